"""tools/gpu_check.py in its reduced CPU mode: every check runs and passes, and the JSON table is complete."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_cpu_mode(tmp_path):
    out = tmp_path / "check.json"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--cpu", "--out", str(out)],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path,
                       env={**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""})
    assert r.returncode == 0 and "all checks passed" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
    table = json.loads(out.read_text())
    checks = [row["check"] for row in table["rows"]]
    assert checks == ["transport fwd+bwd", "distiller step kd", "distiller step wkd_l", "distiller step wkd_lf",
                      "kill + resume run"], checks
    assert table["ok"] and all(row["ok"] for row in table["rows"])
    assert "bitwise = straight run" in table["rows"][-1]["vs"]
