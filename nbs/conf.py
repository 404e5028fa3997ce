"""Sphinx configuration of the `wkd` documentation site.

Build it from the repository root, offline, with the `[dev]` extra installed:

    sphinx-build -b html nbs _docs          # add -W to turn every warning into an error (CI does)

The pages are the notebooks of `nbs/` (myst-nb), with `index.ipynb` (the README's source) as the home page, plus an
API reference generated from the docstrings of every `wkd` module (autodoc + napoleon). Math renders offline with the
MathJax 3 copy that `sphinx-mathjax-offline` ships.

How the pages get their outputs: the notebooks are committed without outputs (nbdev_clean keeps diffs small), so the
build executes them with myst-nb in "cache" mode. A notebook runs once and is stored by the hash of its code cells in
`.jupyter_cache/` (git-ignored, outside every tracked file); a rebuild re-runs only the notebooks whose code changed,
and a failing cell is a build warning (an error under -W), so the site also tests the notebooks. Executing rather
than storing outputs keeps the notebooks' diffs free of images and the figures always drawn by the current code.
Cells run as `nbdev_test` runs them: `IN_TEST=1`, from `nbs/`, and cells flagged with a `tst_flags` word of
settings.ini (`#| slow`, `#| gpu`, `#| notest`) or `#| eval: false` are shown but not run. The papermill notebooks
(`train`, `cost_matrix`, `compare`) train models for minutes: they are shown unexecuted (run them with papermill).
"""
import configparser
import os
import pkgutil
import re
import sys
from pathlib import Path

NBS = Path(__file__).resolve().parent
ROOT = NBS.parent
sys.path.insert(0, str(ROOT))  # autodoc imports `wkd` from this checkout (also when it is not pip-installed)

_ini = configparser.ConfigParser(delimiters=["="])
_ini.read(ROOT / "settings.ini", encoding="utf-8")
_ini = _ini["DEFAULT"]
TST_FLAGS = _ini.get("tst_flags", "").split()

project = _ini["lib_name"]
author = _ini["author"]
copyright = _ini["copyright"]
release = version = _ini["version"]

extensions = [
    "myst_nb",                    # notebooks (and .md) as pages
    "sphinx.ext.autodoc",         # the API reference from the docstrings
    "sphinx.ext.napoleon",        # their numpy-style sections (Parameters, Returns, References)
    "sphinx.ext.viewcode",        # links from the reference to the module source
    "sphinx-mathjax-offline",     # MathJax 3 bundled into _static: math renders without a network
]
root_doc = "index"
exclude_patterns = ["_*", ".*", "**/.ipynb_checkpoints", "**/_*"]  # nbdev's rule: names starting with _ or . are not pages
templates_path = []
html_theme = "pydata_sphinx_theme"
html_title = f"{project} {version}"
html_theme_options = {
    "navigation_with_keys": False,
    "header_links_before_dropdown": 6,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {"**": ["globaltoc.html"]}  # every page in the left bar (the site is small)
html_show_sourcelink = False
html_copy_source = False

# --- myst / myst-nb ---------------------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "cache"
nb_execution_cache_path = str(ROOT / ".jupyter_cache")
# papermill jobs (minutes of training): shown, not executed
nb_execution_excludepatterns = ["train.ipynb", "cost_matrix.ipynb", "compare.ipynb"]
nb_execution_timeout = 600      # seconds per cell
nb_execution_in_temp = False    # run from nbs/, as nbdev_test does
nb_execution_show_tb = True     # a failing cell prints its traceback in the build log
nb_merge_streams = True
nb_kernel_rgx_aliases = {".*": "python3"}
os.environ["IN_TEST"] = "1"     # the kernels inherit it: notebooks shrink as under nbdev_test, nbdev_export() is a no-op
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
for _b in ("JAX", "TENSORFLOW", "CUPY"):
    os.environ.setdefault(f"POT_BACKEND_DISABLE_{_b}", "1")

# --- autodoc ------------------------------------------------------------------------------------------------------
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
napoleon_google_docstring = False
napoleon_numpy_docstring = True
default_role = "code"           # `name` in a docstring is code, as in the notebooks' markdown


# --- nbdev cell directives -> myst-nb cell tags (applied to the notebook text as Sphinx reads it) -------------------
_DIRECTIVE = re.compile(r"^\s*#\s*\|\s*(.*?)\s*$")


def _directives(src):
    "nbdev/Quarto `#| ...` lines at the top of a code cell -> ({key: value}, remaining source)."
    lines, found = src.splitlines(), {}
    while lines and (m := _DIRECTIVE.match(lines[0])):
        text = m.group(1)
        key, value = text.split(":", 1) if ":" in text else (text.split(" ", 1) + [""])[:2]
        found[key.strip()] = value.strip()
        lines.pop(0)
    return found, "\n".join(lines).strip("\n")


def cell_tags(src):
    "The myst-nb tags a code cell gets from its nbdev directives (and the source with the directives removed)."
    d, rest = _directives(src)
    tags = set()
    if d.keys() & set(TST_FLAGS) or d.get("eval", "").lower() == "false":
        tags.add("skip-execution")
    if "hide" in d or d.get("include", "").lower() == "false" or "default_exp" in d or not rest.strip():
        tags.add("remove-cell")
    if d.get("echo", "").lower() == "false":
        tags.add("remove-input")
    if d.get("output", "").lower() == "false":
        tags.add("remove-output")
    return tags, rest, d


def _nbdev_to_myst(app, docname, source):
    "Translate nbdev directives into myst-nb tags; give the home page the site's table of contents."
    path = Path(app.env.doc2path(docname))
    if path.suffix != ".ipynb":
        return
    import json
    nb = json.loads(source[0])
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        tags, rest, d = cell_tags("".join(cell["source"]))
        meta = cell.setdefault("metadata", {})
        if tags:
            meta["tags"] = sorted(set(meta.get("tags", [])) | tags)
        if "fig-cap" in d:  # Quarto's figure caption (also the README's alt text) -> myst-nb's
            meta.setdefault("mystnb", {})["figure"] = {"caption": d["fig-cap"].strip("\"'"),
                                                       "name": d.get("label", "").strip() or None}
        if "skip-execution" not in tags and "remove-cell" not in tags:
            cell["source"] = rest  # the `#|` lines are for nbdev, not for a reader
    if docname == root_doc:
        nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": _toctree()})
    source[0] = json.dumps(nb)


def _pages():
    "Every page but the home page, in reading order: numbered notebooks, then the others, then the API reference."
    names = [p.stem for p in sorted(NBS.glob("*.ipynb")) if not p.name.startswith(("_", ".")) and p.stem != root_doc]
    numbered = [n for n in names if n[:1].isdigit()]
    return numbered, [n for n in names if n not in numbered]


def _toctree():
    numbered, others = _pages()
    block = lambda caption, items: "```{toctree}\n:hidden:\n:caption: " + caption + "\n\n" + "\n".join(items) + "\n```\n"
    return block("The package, notebook by notebook", numbered) + block("Run and explore", others) + \
        block("Reference", ["api"])


# --- API reference: one section per module, in the notebooks' order ----------------------------------------------
def wkd_modules():
    "Every module of the package, ordered by the notebook it is exported from (the reading order)."
    import wkd
    out = []
    for m in pkgutil.iter_modules(wkd.__path__):
        if m.name.startswith("_"):
            continue
        head = (ROOT / "wkd" / f"{m.name}.py").read_text(encoding="utf-8")[:400]
        nb = re.search(r"File to edit: \.\./nbs/(\S+?)\.ipynb", head)
        out.append((nb.group(1) if nb else "~" + m.name, f"wkd.{m.name}"))
    return [name for _, name in sorted(out)]


_SECTION = re.compile(r"^(Parameters|Returns|Yields|Raises|Warns|References|Notes|Examples|Attributes|Methods|"
                      r"See Also|Other Parameters)\s*$")


def _rst_safe(lines):
    """Plain-text docstrings (formulas such as `|S|`, `x_i`, `a * b`) are not reStructuredText. Escape the characters
    docutils would read as markup, and turn indented blocks of the prose (the formulas) into literal blocks."""
    out, in_sections, prev_blank, in_block = [], False, True, False
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if _SECTION.match(line) and set(nxt.strip()) == {"-"}:
            in_sections = True
        indented = line.startswith((" ", "\t")) and line.strip()
        if not in_sections and indented and prev_blank and not in_block:
            out.append("::")     # a formula block of the prose: shown verbatim
            out.append("")
            in_block = True
        elif in_block and line.strip() and not indented:
            in_block = False
        if in_block:
            out.append(line)
        else:
            s = re.sub(r"([*|])", r"\\\1", line)
            s = re.sub(r"(?<=\w)_(?=\W|$)", r"\\_", s)  # a trailing underscore is a hyperlink reference in RST
            out.append(s)
        prev_blank = not line.strip()
    return out


def _docstring_is_rst(text):
    "True when docutils parses `text` without a warning (else the docstring is shown verbatim)."
    import io
    from docutils.core import publish_doctree
    from docutils.utils import SystemMessage
    stream = io.StringIO()
    try:
        publish_doctree(text, settings_overrides={"warning_stream": stream, "report_level": 2, "halt_level": 5,
                                                  "file_insertion_enabled": False, "raw_enabled": False})
    except (SystemMessage, Exception):
        return False
    return not stream.getvalue().strip()


def _process_docstring(app, what, name, obj, options, lines):
    if not lines:
        return
    safe = _rst_safe(lines)
    if not _docstring_is_rst("\n".join(safe)):
        safe = ["::", ""] + ["    " + l for l in lines] + [""]
    lines[:] = safe


def _api_source(app, docname, source):
    if docname != "api":
        return
    blocks = [f"{m}\n{'-' * len(m)}\n\n.. automodule:: {m}\n" for m in wkd_modules()]
    source[0] = source[0].replace(".. wkd-modules::\n", "\n".join(blocks))


def _build_paths(app):
    """myst-nb writes executed notebooks next to the output folder (`<outdir>/../jupyter_execute`, for a `_build/html`
    layout); with the site in `_docs/` that would be the repository root: keep them inside the output folder."""
    from pathlib import Path as _P
    app.env.mystnb_config = app.env.mystnb_config.copy(output_folder=str(_P(app.outdir) / ".jupyter_execute"))


def _sync_readme(app):
    "README.md is written from index.ipynb: rewrite it if the notebook changed (a no-op on a clean checkout)."
    import importlib.util
    spec = importlib.util.spec_from_file_location("sync_readme", ROOT / "tools" / "sync_readme.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for problem in mod.sync():
        from sphinx.util import logging
        logging.getLogger(__name__).warning(problem)


def setup(app):
    app.connect("builder-inited", _build_paths, priority=600)  # after myst-nb's own builder-inited (500)
    app.connect("builder-inited", _sync_readme)
    app.connect("source-read", _nbdev_to_myst)
    app.connect("source-read", _api_source)
    app.connect("autodoc-process-docstring", _process_docstring, priority=400)  # before napoleon (500)
    return {"parallel_read_safe": True}
