"""The documentation: the Sphinx site builds offline without a warning and changes no file of the repository, its pages
show their math and figures in a real browser, and nbdev's own doc processing (what `nbdev_docs` runs before Quarto)
works on every notebook.

The site build executes the package's notebooks (a few minutes on a small CPU the first time; later builds reuse
`.jupyter_cache/`), so its tests are marked `slow`: `pytest -m "not slow" tests` leaves them out, CI runs them.
The browser check needs Chromium (/usr/bin/chromium; Debian: `apt-get install -y chromium`) and the Playwright
package, and skips without them. Its screenshots are kept in the folder the failure message names.
"""
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]


def _git_status():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    r = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True,
                       text=True)
    return set(r.stdout.splitlines()) if r.returncode == 0 else None


def _notebooks():
    "The notebooks nbdev sees (names starting with _ or . are skipped, as nbdev does)."
    return sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith(("_", ".")))


# --- nbdev's doc processing ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("nb", _notebooks(), ids=lambda p: p.name)
def test_nbdev_doc_processing(nb, monkeypatch):
    """`nbdev_docs` (for users with Quarto) runs nbdev's processors on each notebook before Quarto renders it; one of
    them executes every import cell and every exported cell, in order, without the other cells. A cell that mixes
    imports with code needing an earlier cell breaks it (nbdev warns "Found cells containing imports and other code")."""
    from execnb.nbio import read_nb
    from nbdev.processors import FilterDefaults
    monkeypatch.setenv("IN_TEST", "1")
    monkeypatch.chdir(ROOT)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            FilterDefaults()(read_nb(nb))
            error = None
        except Exception as e:  # noqa: BLE001 - reported below with the cell nbdev names
            error = str(e)
    mixed = [str(w.message).split("---")[1].strip() for w in caught if "containing imports and other code" in str(w.message)]
    assert not mixed, (f"{nb.name}: {len(mixed)} cell(s) mix imports with other code (keep import cells import-only):\n"
                       + "\n---\n".join(m[:300] for m in mixed))
    assert error is None, f"{nb.name}: nbdev's doc processing fails: {error[:1500]}"


# --- the Sphinx site ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "Build the site once for this module: `sphinx-build -W -b html nbs OUT` (every warning an error)."
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_nb")
    out = tmp_path_factory.mktemp("site")
    before = _git_status()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(NBS), str(out)],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=1800)
    after = _git_status()
    log = (r.stdout + r.stderr).strip()
    return {"out": out, "rc": r.returncode, "log": log, "before": before, "after": after}


@pytest.mark.slow
def test_site_builds_without_warnings(site):
    warnings_ = [l for l in site["log"].splitlines() if "WARNING" in l or "ERROR" in l]
    assert site["rc"] == 0 and not warnings_, "sphinx-build -W failed:\n" + "\n".join(warnings_)[-6000:] + \
        f"\n(full log: {len(site['log'])} chars; tracebacks of failed notebooks in {site['out']}/reports/)"
    assert (site["out"] / "index.html").is_file()


@pytest.mark.slow
def test_site_build_changes_no_file(site):
    if site["before"] is None:
        pytest.skip("not a git checkout")
    changed = sorted(site["after"] - site["before"])
    assert not changed, "the docs build created or modified files outside git-ignored paths:\n" + "\n".join(changed)


@pytest.mark.slow
def test_every_notebook_is_a_page_and_every_module_in_the_api(site):
    out = site["out"]
    for nb in _notebooks():
        assert (out / f"{nb.stem}.html").is_file(), f"no page for {nb.name}"
    api = (out / "api.html").read_text(encoding="utf-8")
    sys.path.insert(0, str(NBS))
    try:
        import conf
        modules = conf.wkd_modules()
    finally:
        sys.path.remove(str(NBS))
    assert modules
    for m in modules:
        assert f'id="module-{m}"' in api, f"the API reference has no section for {m}"
    assert "Cuturi" in api, "the API reference lacks the Sinkhorn docstring's reference"


@pytest.mark.slow
def test_package_pages_show_their_figures(site):
    "Every numbered notebook that draws a figure shows it on its page (its cells were executed for the site)."
    import json
    missing = []
    for nb in _notebooks():
        if not nb.name[:1].isdigit():
            continue
        code = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text(encoding="utf-8"))["cells"]
                         if c["cell_type"] == "code" and not re.match(r"\s*#\s*\|\s*(slow|gpu|notest|eval:\s*false)",
                                                                      "".join(c["source"])))
        draws = re.search(r"\bplt\.(subplots|figure|imshow|plot)\b|\.imshow\(", code)
        page = (site["out"] / f"{nb.stem}.html").read_text(encoding="utf-8")
        if draws and "<img" not in page:
            missing.append(nb.name)
    assert not missing, f"pages without their figures (not executed?): {missing}"


@pytest.fixture(scope="module")
def served(site):
    "Serve the built site on loopback (MathJax loads its fonts and components over HTTP as on a real host)."
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    handler = functools.partial(Quiet, directory=str(site["out"]))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.slow
def test_sinkhorn_page_in_browser(site, served, tmp_path_factory):
    "Headless Chromium opens the Sinkhorn page: MathJax typeset the math (offline) and a figure is drawn and in view."
    pytest.importorskip("playwright", reason="pip install playwright (the Python package; no browser download)")
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        pytest.skip(f"no Chromium at {chromium}: apt-get install -y chromium")
    if site["rc"] != 0 and not (site["out"] / "00_sinkhorn.html").exists():
        pytest.fail("the site did not build")
    from playwright.sync_api import sync_playwright
    shots = Path(os.environ.get("WKD_TEST_ARTIFACTS") or tmp_path_factory.mktemp("browser_docs"))
    shots.mkdir(parents=True, exist_ok=True)
    where = f"(screenshots in {shots})"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            requests_outside = []
            page.on("request", lambda req: None if req.url.startswith((served, "data:", "blob:", "about:"))
                    else requests_outside.append(req.url))
            page.goto(f"{served}/00_sinkhorn.html", wait_until="load")
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
            page.evaluate("() => MathJax.startup.promise")
            page.screenshot(path=str(shots / "sinkhorn_top.png"))
            n_math = page.locator("mjx-container").count()
            n_err = page.locator("mjx-merror").count()
            raw = page.evaluate("() => document.querySelector('article').innerText.includes('$$')")
            img = page.locator("article img").first
            assert page.locator("article img").count() > 0, f"no figure on the Sinkhorn page {where}"
            img.scroll_into_view_if_needed()
            page.wait_for_function("e => e.complete && e.naturalWidth > 0", arg=img.element_handle(), timeout=30_000)
            visible = img.evaluate("""e => { const r = e.getBoundingClientRect();
                return r.width > 0 && r.height > 0 && r.top < window.innerHeight && r.bottom > 0 && e.naturalWidth > 0; }""")
            page.screenshot(path=str(shots / "sinkhorn_figure.png"))
        finally:
            browser.close()
    assert n_math >= 5, f"MathJax rendered {n_math} formulas on the Sinkhorn page {where}"
    assert n_err == 0, f"{n_err} MathJax errors on the Sinkhorn page {where}"
    assert not raw, f"unrendered $$ math left in the page text {where}"
    assert visible, f"the first figure is not visible after scrolling to it {where}"
    assert not requests_outside, f"the page fetched from outside the site: {requests_outside[:5]} {where}"
