"""The real-browser check of the transport explorer (tools/browser_check.py), as a test.

Skips when Chromium (/usr/bin/chromium; Debian: `apt-get install -y chromium`) or the Playwright package is missing.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_transport_explorer_in_browser(tmp_path):
    pytest.importorskip("playwright", reason="pip install playwright (the Python package; no browser download)")
    if not Path("/usr/bin/chromium").exists() and shutil.which("chromium") is None:
        pytest.skip("Chromium not found: apt-get install -y chromium")
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "browser_check.py"), "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (tmp_path / "before.png").exists() and (tmp_path / "after.png").exists()
