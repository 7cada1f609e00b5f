"""Sphinx configuration of the book: docs/*.md (the guide) and the committed chapter notebooks.

The committed notebooks (and chapters/README.md) are copied into docs/chapters (git-ignored) at the
start of every build, and rendered without being executed: their outputs are the real full-mode runs. docs/_ext/book.py adds the links at the
top of each chapter, the `cli-help` directive of the API page and the local copy of MathJax.
"""
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))       # the package, for autodoc
sys.path.insert(0, str(HERE / "_ext"))
os.environ.setdefault("COLUMNS", "100")    # argparse wraps the CLI help to this width

import book  # noqa: E402  (docs/_ext/book.py)

book.sync_chapters(HERE.parent / "chapters", HERE / "chapters")

project = "gluon_resnet"
author = "the gluon_resnet authors"
copyright = "2026, the gluon_resnet authors"
language = "en"

extensions = ["myst_nb", "sphinx.ext.autodoc", "book"]
root_doc = "index"
exclude_patterns = ["_build", "examples", "**/.ipynb_checkpoints"]
suppress_warnings = []

# notebooks: render what is committed, never execute
nb_execution_mode = "off"
nb_merge_streams = True
import myst_nb.sphinx_ext  # noqa: E402
myst_nb.sphinx_ext.OUTPUT_FOLDER = "build/jupyter_execute"  # its scratch folder beside site/: the ignored build/
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

numfig = True               # figures and tables with captions get numbers
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_inherit_docstrings = False   # not MXNet's own docstrings of forward() and the like

html_theme = "sphinx_book_theme"
html_title = "gluon_resnet: residual networks, the d2l way"
html_static_path = ["_static"]
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
}
html_last_updated_fmt = None
html_copy_source = False
html_show_sourcelink = False

# MathJax 2.7 from the jupyter-server-mathjax wheel, copied next to the pages: no CDN, no network
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
# MathJax 2 settings: the wheel ships the STIX-Web fonts only (not MathJax's TeX fonts), and MyST marks
# each page "ignore" and its formulas "math", which MathJax 2 reads as tex2jax's processClass
mathjax2_config = {"HTML-CSS": {"availableFonts": ["STIX-Web"], "preferredFont": "STIX-Web",
                                "webFont": "STIX-Web", "imageFont": None},
                   "tex2jax": {"processClass": "tex2jax_process|mathjax_process|math|output_area"}}
