#!/usr/bin/env python
"""Write a notebook from a percent-format script (cells start with `# %%`; `# %% [markdown]` cells hold markdown
as `# `-prefixed lines). Handy for drafting long notebooks in an editor:

    python tools/pct2nb.py draft.py nbs/00_sinkhorn.ipynb

Cell tags go on the marker line: `# %% tags=["parameters"]`. The notebook is the source afterwards.
"""
import json
import re
import sys

import nbformat


def convert(text):
    cells, kind, tags, buf = [], None, [], []

    def flush():
        if kind is None:
            return
        lines = buf[:]
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if kind == "markdown":
            lines = [l[2:] if l.startswith("# ") else ("" if l.strip() == "#" else l) for l in lines]
            cell = nbformat.v4.new_markdown_cell("\n".join(lines))
        else:
            cell = nbformat.v4.new_code_cell("\n".join(lines))
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in text.splitlines():
        m = re.match(r"^# %%(.*)$", line)
        if m:
            flush()
            rest = m.group(1)
            kind = "markdown" if "[markdown]" in rest else "code"
            t = re.search(r"tags=(\[.*?\])", rest)
            tags = json.loads(t.group(1)) if t else []
            buf = []
        else:
            buf.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "python3", "language": "python", "name": "python3"}
    return nb


if __name__ == "__main__":
    src, dst = sys.argv[1:3]
    nbformat.write(convert(open(src, encoding="utf-8").read()), dst)
