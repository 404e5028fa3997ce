"""The real-browser check of the transport explorer (tests/browser_check.py), as a test.

JupyterLab runs `nbs/explore_transport.ipynb` in headless Chromium; the test drags the temperature slider and compares
screenshots. The explorer opens the project's default run (the embedded default's run, or the shipped teacher); where
the checkout has neither, the test makes a tiny run with `wkd.train.train` and opens that.

Skips when Chromium (/usr/bin/chromium; Debian: `apt-get install -y chromium`) or the Playwright package is missing.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tiny_run(root: Path) -> Path:
    "A teacher run and a WKD-L run beside it: one short epoch on 64 embedded images."
    from torch.utils.data import Subset
    from wkd.config import get_config
    from wkd.data import get_datasets
    from wkd.train import train
    tr, te, _ = get_datasets("fashion_mnist")
    data = (Subset(tr, range(64)), Subset(te, range(64)))
    short = dict(epochs=1, lr_milestones=[1], decay_start=0, batch_size=32)
    t = train(get_config("teacher", **short), root / "fmnist" / "teacher", data=data, progress=False, verbose=False)
    train(get_config("wkd_l", **short), root / "fmnist" / "wkd_l", teacher=t["model"].eval(), data=data,
          progress=False, verbose=False)
    return root / "fmnist" / "wkd_l"


def test_transport_explorer_in_browser(tmp_path):
    pytest.importorskip("playwright", reason="pip install playwright (the Python package; no browser download)")
    if not Path("/usr/bin/chromium").exists() and shutil.which("chromium") is None:
        pytest.skip("Chromium not found: apt-get install -y chromium")
    from wkd.config import project_path
    from wkd.explore import DEFAULT_RUN, SHIPPED_TEACHER
    has_default = (project_path(DEFAULT_RUN) / "config.json").is_file() or \
        (project_path(SHIPPED_TEACHER) / "teacher.pt").is_file()
    run = [] if has_default else ["--run", str(_tiny_run(tmp_path / "runs"))]
    out = tmp_path / "shots"
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "browser_check.py"), "--out", str(out), *run],
                       capture_output=True, text=True, timeout=600)
    print(r.stdout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (out / "before.png").exists() and (out / "after.png").exists()
