"""The documentation: the Sphinx site builds offline without a warning and changes no file of the repository, its pages
show their math and figures in a real browser, and nbdev's own doc processing (what `nbdev_docs` runs before Quarto)
works on every notebook.

The site build executes the package's notebooks (a few minutes on a small CPU the first time; later builds reuse
`.jupyter_cache/`), so its tests are marked `slow`: `pytest -m "not slow" tests` leaves them out, CI runs them.
The browser check needs Chromium (/usr/bin/chromium; Debian: `apt-get install -y chromium`) and the Playwright
package (without them the test checks the site and then skips). Its screenshots are kept in the folder
the failure message names (`WKD_TEST_ARTIFACTS=DIR` chooses it).
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
# One test builds the site and checks it, so that pytest-xdist never builds it twice in parallel workers.
def _build(out):
    "`sphinx-build -W -b html nbs OUT` (every warning an error); returns (exit code, log, git status before, after)."
    before = _git_status()
    r = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(NBS), str(out)],
                       cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
                       timeout=1800)
    return r.returncode, (r.stdout + r.stderr).strip(), before, _git_status()


def _api_problems(out):
    api = (out / "api.html").read_text(encoding="utf-8")
    sys.path.insert(0, str(NBS))
    try:
        import conf
        modules = conf.wkd_modules()
    finally:
        sys.path.remove(str(NBS))
    problems = [f"the API reference has no section for {m}" for m in modules if f'id="module-{m}"' not in api]
    if "Cuturi" not in api:
        problems.append("the API reference lacks the Sinkhorn docstring's reference (Cuturi 2013)")
    return problems


def _figure_problems(out):
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
        page = out / f"{nb.stem}.html"
        if not page.is_file():
            missing.append(f"no page for {nb.name}")
        elif draws and "<img" not in page.read_text(encoding="utf-8"):
            missing.append(f"{nb.stem}.html shows none of the figures its notebook draws")
    return missing


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _browser_problems(out, shots):
    """Headless Chromium opens the Sinkhorn page, served on loopback as on a real host: MathJax typeset the math
    (offline, from the site's own copy), and a figure is drawn and in view after scrolling to it."""
    from playwright.sync_api import sync_playwright
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(out)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    served = f"http://127.0.0.1:{httpd.server_address[1]}"
    outside = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.on("request", lambda req: None if req.url.startswith((served, "data:", "blob:", "about:"))
                        else outside.append(req.url))
                page.goto(f"{served}/00_sinkhorn.html", wait_until="load")
                page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                       timeout=30_000)
                page.evaluate("() => MathJax.startup.promise")
                page.screenshot(path=str(shots / "sinkhorn_top.png"))
                n_math, n_err = page.locator("mjx-container").count(), page.locator("mjx-merror").count()
                raw = page.evaluate("() => document.querySelector('article').innerText.includes('$$')")
                n_img = page.locator("article img").count()
                visible = False
                if n_img:
                    img = page.locator("article img").first
                    img.scroll_into_view_if_needed()
                    page.wait_for_function("e => e.complete && e.naturalWidth > 0", arg=img.element_handle(),
                                           timeout=30_000)
                    visible = img.evaluate("""e => { const r = e.getBoundingClientRect();
                        return r.width > 0 && r.height > 0 && r.top < window.innerHeight && r.bottom > 0
                               && e.naturalWidth > 0; }""")
                    page.screenshot(path=str(shots / "sinkhorn_figure.png"))
            finally:
                browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    problems = []
    if n_math < 5:
        problems.append(f"MathJax rendered {n_math} formulas on the Sinkhorn page")
    if n_err:
        problems.append(f"{n_err} MathJax errors on the Sinkhorn page")
    if raw:
        problems.append("unrendered $$ math left in the Sinkhorn page's text")
    if not n_img:
        problems.append("no figure on the Sinkhorn page")
    elif not visible:
        problems.append("the Sinkhorn page's first figure is not visible after scrolling to it")
    if outside:
        problems.append(f"the page fetched from outside the site: {outside[:5]}")
    return problems


@pytest.mark.slow
def test_docs_site(tmp_path_factory):
    """The site builds with `-W` (no warning), changes no file outside git-ignored paths, has a page per notebook with
    its figures and an API section per module, and the Sinkhorn page renders its math and a figure in Chromium."""
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_nb")
    out = tmp_path_factory.mktemp("site")
    rc, log, before, after = _build(out)
    warned = [l for l in log.splitlines() if "WARNING" in l or "ERROR" in l]
    assert rc == 0 and not warned, "sphinx-build -W failed:\n" + "\n".join(warned)[-6000:] + \
        f"\n(tracebacks of failed notebooks in {out}/reports/)"
    problems = []
    if before is not None and after != before:
        problems.append("the docs build created or modified files outside git-ignored paths: "
                        + ", ".join(sorted(after - before)))
    problems += _api_problems(out) + _figure_problems(out)
    shots = Path(os.environ.get("WKD_TEST_ARTIFACTS") or tmp_path_factory.mktemp("browser_docs"))
    shots.mkdir(parents=True, exist_ok=True)
    chromium = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    try:
        import playwright  # noqa: F401
        have_browser = chromium.exists()
    except ImportError:
        have_browser = False
    if have_browser:
        problems += [f"{p} (screenshots in {shots})" for p in _browser_problems(out, shots)]
    assert not problems, "\n".join(problems)
    if not have_browser:
        pytest.skip(f"site checked, but not in a browser: needs Chromium at {chromium} (apt-get install -y chromium) "
                    "and the playwright package")
