"""README.md is written from nbs/index.ipynb by tools/sync_readme.py: check that it is current and self-contained."""
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _sync():
    spec = importlib.util.spec_from_file_location("sync_readme", ROOT / "tools" / "sync_readme.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_matches_index_notebook():
    assert (ROOT / "README.md").read_text(encoding="utf-8") == _sync().render(), \
        "README.md differs from nbs/index.ipynb: edit the notebook, then run `python tools/sync_readme.py`"


def test_readme_figures_exist_and_links_resolve():
    mod = _sync()
    figs = mod.figures()
    assert figs, "the index notebook declares no README figure (a code cell with `#| label: fig-...`)"
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for f in figs:
        assert f.is_file() and f.stat().st_size > 1000, f"{f}: run `python tools/sync_readme.py --figures`"
        assert f"]({f.relative_to(ROOT).as_posix()})" in text
    # every relative link or image of the README points at a file of the repository
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:", target) and not target.startswith("#"):
            assert (ROOT / target.split("#")[0]).exists(), f"README links {target}, which is not in the repository"


def test_readme_stands_alone():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for bad in ("spec §", "../shared", "/shared/"):
        assert bad not in text, f"README.md points outside the project: {bad!r}"
