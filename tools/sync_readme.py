#!/usr/bin/env python
"""Write README.md from nbs/index.ipynb (the source), so the two always agree.

    python tools/sync_readme.py            # rewrite README.md from the notebook (text only; runs nothing)
    python tools/sync_readme.py --check    # exit 1 if README.md or a README figure is out of date / missing
    python tools/sync_readme.py --figures  # also run the notebook and redraw the README's figures (nbs/images/)

What goes into the README, in the notebook's order:
- every markdown cell;
- every code cell a reader sees (not `#| hide`, `#| echo: false` or `#| include: false`), as a python block;
  consecutive ones are merged into one block, the `#|` lines removed;
- for a code cell with a Quarto figure label (`#| label: fig-NAME`), the image `nbs/images/fig-NAME.png` with the
  cell's `#| fig-cap:` as its text.

The figures are committed files, drawn only by `--figures`: README.md is written from text alone, so rendering it,
`nbdev_export`, the tests and the docs build never rewrite an image (a PNG is not byte-identical across matplotlib
versions). The docs site shows the same figure drawn by the current code.
"""
import base64
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
INDEX = NBS / "index.ipynb"
README = ROOT / "README.md"
IMAGES = NBS / "images"
_DIRECTIVE = re.compile(r"^\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*?)\s*$")


def directives(src):
    "The `#| key: value` lines at the top of a code cell as a dict, and the rest of the source."
    lines, found = src.splitlines(), {}
    while lines and (m := _DIRECTIVE.match(lines[0])):
        found[m.group(1)] = m.group(2).strip().strip('"').strip("'")
        lines.pop(0)
    return found, "\n".join(lines).strip("\n")


def figure_path(d):
    "Where the README figure of a cell with directives `d` lives (None: the cell has no figure label)."
    label = d.get("label", "")
    return IMAGES / f"{label}.png" if label.startswith("fig-") else None


def _hidden(d):
    return "hide" in d or d.get("echo", "").lower() == "false" or d.get("include", "").lower() == "false"


def render(nb_path=INDEX):
    "README text from the index notebook (see the module docstring)."
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    parts, code = [], []

    def flush():
        if code:
            parts.append("```python\n" + "\n\n".join(code) + "\n```")
            code.clear()

    for c in nb["cells"]:
        src = "".join(c["source"])
        if c["cell_type"] == "markdown":
            flush()
            if src.strip():
                parts.append(src.strip())
            continue
        if c["cell_type"] != "code":
            continue
        d, body = directives(src)
        if not _hidden(d) and body.strip():
            code.append(body)
        fig = figure_path(d)
        if fig is not None:
            flush()
            parts.append(f"![{d.get('fig-cap', d['label'])}]({fig.relative_to(ROOT).as_posix()})")
    flush()
    return "\n\n".join(parts) + "\n"


def figures(nb_path=INDEX):
    "Paths of the README figures the notebook declares."
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    out = [figure_path(directives("".join(c["source"]))[0]) for c in nb["cells"] if c["cell_type"] == "code"]
    return [p for p in out if p is not None]


def draw_figures(nb_path=INDEX):
    "Run the notebook (from nbs/, as the tests do) and write the PNG of every labelled figure cell."
    import os
    os.environ.setdefault("MPLBACKEND", "Agg")
    from execnb.nbio import read_nb
    from execnb.shell import CaptureShell
    nb = read_nb(nb_path)
    shell = CaptureShell(path=Path(nb_path).parent)
    shell.run_all(nb, exc_stop=True)
    IMAGES.mkdir(exist_ok=True)
    written = []
    for c in nb.cells:
        if c.cell_type != "code" or (fig := figure_path(directives(c.source)[0])) is None:
            continue
        pngs = [o["data"]["image/png"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        if len(pngs) != 1:
            raise RuntimeError(f"the cell labelled {fig.stem} drew {len(pngs)} figures, expected 1")
        data = pngs[0]
        fig.write_bytes(base64.b64decode("".join(data) if isinstance(data, list) else data))
        written.append(fig)
    return written


def sync(check=False):
    "Write README.md if it differs from the notebook (or, with check, only report). Returns a list of problems."
    text, problems = render(), []
    if README.read_text(encoding="utf-8") != text:
        if check:
            problems.append("README.md is out of date: run `python tools/sync_readme.py`")
        else:
            README.write_text(text, encoding="utf-8")
    problems += [f"{p.relative_to(ROOT)} is missing: run `python tools/sync_readme.py --figures`"
                 for p in figures() if not p.exists()]
    return problems


def main(argv):
    if "--figures" in argv:
        for p in draw_figures():
            print(f"wrote {p.relative_to(ROOT)}")
    problems = sync(check="--check" in argv)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
