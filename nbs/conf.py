"""Sphinx configuration of the `wkd` documentation site.

Build it from the repository root, offline, with the `[dev]` extra installed:

    sphinx-build -b html nbs _docs          # add -W to turn every warning into an error (CI does)

The pages are the notebooks of `nbs/` (myst-nb), with `index.ipynb` (the README's source) as the home page, plus an
API reference generated from the docstrings of every `wkd` module (autodoc + napoleon). Math renders offline with the
MathJax 3 copy that `sphinx-mathjax-offline` ships.

How the pages get their outputs: the notebooks are committed without outputs (nbdev_clean keeps diffs small), so the
build executes them with myst-nb in "cache" mode. A notebook runs once and is stored by the hash of its code cells in
`.jupyter_cache/` (git-ignored, outside every tracked file); the key also holds a hash of the package's sources, so
a rebuild re-runs a notebook when its code or any module of `wkd` changed, and reuses it otherwise. A failing cell is a build warning (an error under -W), so the site also tests the notebooks. Executing rather
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
    "navbar_center": [],           # the pages are listed in the left bar (below); the header keeps search and theme
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
# the kernels must draw with IPython's inline backend (their default): a backend forced through the environment (the
# test suite sets Agg) would leave every figure out of the pages
os.environ.pop("MPLBACKEND", None)
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
for _b in ("JAX", "TENSORFLOW", "CUPY"):
    os.environ.setdefault(f"POT_BACKEND_DISABLE_{_b}", "1")

try:  # the kernels listen on loopback; with CurveZMQ at hand, let jupyter_client encrypt their channels, as the
    # kernelspec allows (without it ipykernel logs "running over TCP without encryption" once per notebook)
    import zmq
    from jupyter_client.manager import KernelManager
    if zmq.has("curve"):
        KernelManager.transport_encryption.default_value = "auto"
except (ImportError, AttributeError):
    pass

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
    # part of the execution cache's key: a change anywhere in the package re-runs the notebook
    nb["cells"].insert(0, {"cell_type": "code", "id": "wkd-sources", "execution_count": None,
                           "metadata": {"tags": ["remove-cell"]},
                           "outputs": [], "source": f"# wkd sources {_package_hash()}"})
    if docname == root_doc:
        nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": _toctree()})
    source[0] = json.dumps(nb)


def _package_hash():
    import hashlib
    h = hashlib.sha1()
    for f in sorted((ROOT / "wkd").glob("*.py")):
        if f.name != "_modidx.py":
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def _outdated(app, env, added, changed, removed):
    "Sphinx re-reads only changed sources: when the package changed, every page (notebooks, API) is out of date."
    h = _package_hash()
    if getattr(env, "wkd_package_hash", None) == h:
        return []
    env.wkd_package_hash = h
    return sorted(set(env.found_docs) - set(added) - set(changed))


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
_FREE_TEXT = {"References", "Notes"}   # sections napoleon passes through as they are


def _escape(line):
    "Escape what docutils would read as markup in a plain-text formula line."
    s = re.sub(r"([*|])", r"\\\1", line)
    s = re.sub(r"(?<=\w)_(?=\W|$)", r"\\_", s)          # a trailing underscore is a hyperlink reference in RST
    s = re.sub(r"`[^`]+`(.?)", lambda m: m.group(0)[:-1] + "\\ " + m.group(1)  # `Subset`s, `n`²: a literal
               if m.group(1) and not re.match(r"[\s\-.,:;!?\\/'\")\]}>]", m.group(1)) else m.group(0), s)  # ends at a word end
    return s


def _rst_safe(lines):
    """Plain-text docstrings (formulas such as `|S|`, `x_i`, `a * b`) are not reStructuredText: escape the characters
    docutils would read as markup, turn the indented formula blocks of the prose into literal blocks, and join the
    hanging-indent continuation lines of the free-text sections (References)."""
    out, section, prev_blank, in_block = [], None, True, False
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if _SECTION.match(line) and nxt.strip() and set(nxt.strip()) == {"-"}:
            section, in_block = line.strip(), False
        indented = bool(line.strip()) and line.startswith((" ", "\t"))
        if section is None and indented and prev_blank and not in_block:
            out += ["::", ""]     # a formula block of the prose: shown verbatim
            in_block = True
        elif in_block and line.strip() and not indented:
            in_block = False
        if in_block:
            out.append(line)
        elif section in _FREE_TEXT and indented and out and out[-1].strip():
            out[-1] += " " + _escape(line.strip())
        else:
            out.append(_escape(line))
        prev_blank = not line.strip()
    return out


def _docstring_is_rst(text):
    "True when docutils parses `text` without a warning."
    import io
    from docutils.core import publish_doctree
    stream = io.StringIO()
    try:
        publish_doctree(text, settings_overrides={"warning_stream": stream, "report_level": 2, "halt_level": 5,
                                                  "file_insertion_enabled": False, "raw_enabled": False})
    except Exception:  # noqa: BLE001 - any failure means: show the docstring verbatim
        return False
    return not stream.getvalue().strip()


_ORIGINAL = {}


def _before_napoleon(app, what, name, obj, options, lines):
    _ORIGINAL[name] = list(lines)
    lines[:] = _rst_safe(lines)


def _after_napoleon(app, what, name, obj, options, lines):
    """If the docstring still is not valid reStructuredText, show it verbatim, as help() does: a docstring written
    for help() never breaks the build (-W), and the page says exactly what the docstring says."""
    original = _ORIGINAL.pop(name, None)
    if original and not _docstring_is_rst("\n".join(lines)):
        lines[:] = ["::", ""] + ["    " + l for l in original] + [""]


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
    app.connect("env-get-outdated", _outdated)
    app.connect("source-read", _nbdev_to_myst)
    app.connect("source-read", _api_source)
    app.connect("autodoc-process-docstring", _before_napoleon, priority=400)  # napoleon runs at 500
    app.connect("autodoc-process-docstring", _after_napoleon, priority=600)
    return {"parallel_read_safe": True}
