"""Run every notebook in `nbs/` as a test, the way `nbdev_test` does (one pytest test per notebook).

Cells flagged with a word of `tst_flags` in settings.ini (`notest`, `slow`, `gpu`) are skipped unless the
environment variable `WKD_TEST_FLAGS` names them, e.g. `WKD_TEST_FLAGS=slow pytest tests`.
"""
import configparser
import os
from pathlib import Path

import pytest

import nbdev.test as nbtest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"


def _flags():
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini", encoding="utf-8")
    return cfg["DEFAULT"].get("tst_flags", "").split()


def _notebooks():
    return sorted(p for p in NBS.rglob("*.ipynb")
                  if not any(part.startswith(("_", ".")) for part in p.relative_to(NBS).parts)
                  and ".ipynb_checkpoints" not in p.parts)


@pytest.mark.parametrize("nb", _notebooks(), ids=lambda p: str(p.relative_to(NBS)))
def test_notebook(nb):
    os.environ["IN_TEST"] = "1"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    force = os.environ.get("WKD_TEST_FLAGS", "").split()
    ok, secs = nbtest.test_nb(nb, skip_flags=_flags(), force_flags=force, basepath=ROOT)
    assert ok, f"{nb.name} failed after {secs:.1f}s (the cell traceback is in the captured stderr above)"
