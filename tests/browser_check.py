#!/usr/bin/env python
"""Real-browser check of the interactive transport explorer (`nbs/explore_transport.ipynb`).

Starts JupyterLab headless on loopback, opens a copy of the notebook in headless Chromium (driven by Playwright), runs
all cells, checks that no cell produced an error, moves the temperature slider of the app, and checks that the plot
changed. Screenshots of the app before and after go to `--out`. Prints one summary line; exit code 0 = pass, 1 = fail.

    python tests/browser_check.py --out /tmp/browser_check [--run RUN_FOLDER]

Needs the Playwright Python package (`pip install playwright`) and a Chromium binary (Debian: `apt-get install -y
chromium`, found at /usr/bin/chromium); Playwright's own browser download is not used. The notebook is copied into a
temporary folder first, and autosave is off, so the check never writes to `nbs/`. `--run` sets the notebook's `run`
parameter in that copy (the explorer opens the project's default run otherwise).
"""
import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
# JupyterLab user settings for the check: no autosave, every cell rendered (no virtual scrolling of the notebook), and
# no news pop-up (it would ask to reach the internet and cover part of the page)
SETTINGS = {"@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
            "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
            "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"}}

# Runs in the page: the notebook model's code cells, their execution counts and error outputs.
CELLS_JS = """() => {
  const nb = window.jupyterapp.shell.currentWidget;
  if (!nb || !nb.content || !nb.content.model) return null;
  const out = [];
  for (const cell of nb.content.model.cells) {
    if (cell.type !== 'code') continue;
    const errors = cell.outputs.toJSON().filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue);
    out.push({count: cell.executionCount, errors: errors, src: cell.sharedModel.getSource().slice(0, 60)});
  }
  return out;
}"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def start_lab(workdir, port, token, log):
    "Start JupyterLab serving `workdir`; wait until its API answers. Returns the Popen."
    settings = workdir / "_settings"
    for name, value in SETTINGS.items():
        p = settings / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(value))
    env = dict(os.environ, OMP_NUM_THREADS="1", JUPYTER_RUNTIME_DIR=str(workdir / "_runtime"),
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip", "127.0.0.1", "--port", str(port),
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={workdir}", "--LabApp.expose_app_in_browser=True",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={workdir / '_workspaces'}",
           "--ServerApp.open_browser=False"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with code {proc.returncode} (log: {log.name})")
        try:
            get_json(f"http://127.0.0.1:{port}/api/status?token={token}")
            return proc
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"jupyter lab did not answer within 60 s (log: {log.name})")


def kernels_idle(port, token):
    ks = get_json(f"http://127.0.0.1:{port}/api/kernels?token={token}")
    return bool(ks) and all(k["execution_state"] == "idle" for k in ks)


def wait_until(pred, timeout, what, poll=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v: return v
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def copy_notebook(notebook, dest, run=None):
    "Copy `notebook` to `dest`; with `run`, append `run = '<run>'` to its papermill parameters cell."
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    if run is not None:
        cell = next((c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])), None)
        if cell is None: raise ValueError(f"{notebook} has no cell tagged 'parameters' to set run in")
        src = "".join(cell["source"])
        cell["source"] = src + ("" if src.endswith("\n") else "\n") + f"run = {str(run)!r}\n"
    Path(dest).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def check(out, notebook, timeout, run=None):
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="wkd_browser_check_"))
    copy_notebook(notebook, work / notebook.name, run)
    port, token = free_port(), secrets.token_hex(16)
    log = open(out / "jupyter.log", "w")
    proc = None
    try:
        proc = start_lab(work, port, token, log)
        chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
        if not Path(chromium).exists():
            raise RuntimeError(f"no Chromium at {chromium}: apt-get install -y chromium (or set CHROMIUM=path)")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1500})
            page.goto(f"http://127.0.0.1:{port}/lab/tree/{notebook.name}?token={token}")
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget && "
                                   "window.jupyterapp.shell.currentWidget.context && "
                                   "window.jupyterapp.shell.currentWidget.context.isReady", timeout=60_000)
            page.wait_for_function("() => { const s = window.jupyterapp.shell.currentWidget.sessionContext; "
                                   "return s && s.session && s.session.kernel && "
                                   "s.session.kernel.connectionStatus === 'connected'; }", timeout=60_000)
            n_code = len(page.evaluate(CELLS_JS))
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            # all code cells executed (or one failed and the run stopped) and the kernel idle again
            def finished():
                cells = page.evaluate(CELLS_JS)
                errs = [e for c in cells for e in c["errors"]]
                done = all(c["count"] is not None for c in cells)
                return (done or errs) and kernels_idle(port, token) and cells
            cells = wait_until(finished, timeout, "all cells to run")
            errors = [f"cell '{c['src']}…': {e}" for c in cells for e in c["errors"]]
            if errors:
                raise AssertionError(f"{len(errors)} cell error(s): " + " | ".join(errors)[:600])
            if not all(c["count"] is not None for c in cells):
                raise AssertionError("not every code cell ran")

            # the displayed app: the first image widget and the first temperature slider in the page
            app = page.locator(".widget-vbox", has=page.locator("img.widget-image")).first
            img = page.locator("img.widget-image").first
            img.scroll_into_view_if_needed()
            wait_until(lambda: img.evaluate("e => e.complete && e.naturalWidth > 0"), 30, "the plot to render")
            slider = page.locator(".widget-slider", has=page.locator(".widget-label", has_text="temperature")).first
            readout = slider.locator(".widget-readout")
            before_value, before_src = readout.inner_text(), img.get_attribute("src")
            app.scroll_into_view_if_needed()
            shot_before = app.screenshot(path=str(out / "before.png"))

            handle = slider.locator(".noUi-handle").first
            handle.scroll_into_view_if_needed()
            box = handle.bounding_box()
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x + 70, y, steps=8)
            page.mouse.up()
            wait_until(lambda: img.get_attribute("src") != before_src, 30, "the plot to update after the slider moved")
            wait_until(lambda: img.evaluate("e => e.complete && e.naturalWidth > 0"), 30, "the new plot to load")
            time.sleep(0.3)
            after_value = readout.inner_text()
            shot_after = app.screenshot(path=str(out / "after.png"))
            page.screenshot(path=str(out / "page.png"), full_page=False)
            message = page.locator(".widget-html", has_text="Updated in").first.inner_text()
            browser.close()
        if before_value == after_value:
            raise AssertionError(f"the temperature slider did not move (readout {before_value})")
        if shot_before == shot_after:
            raise AssertionError("the screenshots before and after the slider move are identical")
        if "Error" in message:
            raise AssertionError(f"the app shows an error: {message}")
        return (f"{len(cells)}/{n_code} code cells ran without errors; temperature {before_value} → {after_value}; "
                f"plot changed (before.png {len(shot_before) // 1024} KB, after.png {len(shot_after) // 1024} KB)")
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "wkd_browser_check",
                    help="folder for the screenshots and the JupyterLab log")
    ap.add_argument("--notebook", type=Path, default=ROOT / "nbs" / "explore_transport.ipynb")
    ap.add_argument("--timeout", type=float, default=300, help="seconds allowed for running all cells")
    ap.add_argument("--run", type=Path, default=None, help="run folder for the explorer (default: the notebook's)")
    args = ap.parse_args(argv)
    t0 = time.time()
    try:
        summary = check(args.out.resolve(), args.notebook.resolve(), args.timeout,
                        args.run.resolve() if args.run else None)
    except Exception as e:  # one line, whatever failed
        print(f"browser check FAILED after {time.time() - t0:.1f} s: {type(e).__name__}: {e} (output in {args.out})")
        return 1
    print(f"browser check passed in {time.time() - t0:.1f} s: {summary}; screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
