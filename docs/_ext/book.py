"""The book's own Sphinx hooks, kept out of the chapter sources and notebooks.

- At the top of every chapter, under its title: links to d2l's ResNet section (English and Chinese),
  to the paper, and to the previous and next chapters. They are added to each chapter's document tree
  when Sphinx reads it (`doctree-read`), so the notebooks stay as `chapters/build.py` writes them.
- `cli-help`: a directive that prints a command's `--help`, run in this process, for the API page.
- Links from docs/*.md to `../chapters/...` (right on a code host, where docs/chapters does not exist)
  are read as `chapters/...`, the copies the book renders.
- `sync_chapters`: the committed notebooks are copied into the docs tree (docs/chapters, git-ignored),
  since Sphinx reads only files under its source folder.
- MathJax: the copy inside the jupyter-server-mathjax wheel goes to `_static/mathjax`, so formulas
  render with no network.
"""
import contextlib
import importlib
import io
import re
import shutil
import sys
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx import addnodes
from sphinx.errors import ExtensionError

D2L_EN = "https://d2l.ai/chapter_convolutional-modern/resnet.html"
D2L_ZH = "https://zh.d2l.ai/chapter_convolutional-modern/resnet.html"
PAPER = "https://arxiv.org/abs/1512.03385"
CHAPTER = re.compile(r"^chapters/\d\d_[a-z0-9_]+$")


def sync_chapters(source, target):
    """Copy chapters/*.ipynb and chapters/README.md to `target`; unchanged copies keep their time stamps."""
    target.mkdir(exist_ok=True)
    wanted = sorted(source.glob("[0-9][0-9]_*.ipynb")) + [source / "README.md"]
    names = {path.name for path in wanted}
    for stale in target.iterdir():
        if stale.name not in names:
            stale.unlink()
    for path in wanted:
        copy = target / path.name
        if not copy.exists() or copy.read_bytes() != path.read_bytes():
            shutil.copyfile(path, copy)


def relink_chapters(app, docname, source):
    """`](../chapters/X)` in a guide page -> `](chapters/X)`: the same notebook, as the book holds it."""
    if not docname.startswith("chapters/"):
        source[0] = source[0].replace("](../chapters/", "](chapters/")


def chapter_names(env):
    """The chapter documents in reading order (their file names start with the number)."""
    return sorted(name for name in env.found_docs if CHAPTER.match(name))


def doc_link(docname, target, label=None):
    """A link to another page that Sphinx resolves (and checks) later; without a label, the page's title."""
    ref = addnodes.pending_xref("", refdomain="std", reftype="doc", reftarget="/" + target,
                                refdoc=docname, refexplicit=label is not None, refwarn=True)
    ref += nodes.inline("", label or "")
    return ref


def external(label, url):
    return nodes.reference("", label, refuri=url, internal=False)


def chapter_header(docname, chapters):
    """One line of links: d2l (English, 中文), the paper, and the previous and next chapter."""
    i = chapters.index(docname)
    line = nodes.paragraph(classes=["chapter-links"])
    line += nodes.Text("Read beside d2l: ")
    line += external("English", D2L_EN)
    line += nodes.Text(" · ")
    line += external("中文", D2L_ZH)
    line += nodes.Text(" · the paper: ")
    line += external("arXiv:1512.03385", PAPER)
    line += nodes.Text(" · previous: ")
    line += doc_link(docname, chapters[i - 1]) if i > 0 else doc_link(docname, "index", "the book's home")
    if i + 1 < len(chapters):
        line += nodes.Text(" · next: ")
        line += doc_link(docname, chapters[i + 1])
    else:
        line += nodes.Text(" · next: the guide, from ")
        line += doc_link(docname, "training")
    box = nodes.container(classes=["chapter-header"])
    box += line
    return box


def add_chapter_header(app, doctree):
    docname = app.env.docname
    chapters = chapter_names(app.env)
    if docname not in chapters:
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None or not isinstance(section[0], nodes.title):
        raise ExtensionError(f"{docname}: a chapter must start with a title (a '# ...' heading)")
    section.insert(1, chapter_header(docname, chapters))


class CliHelp(Directive):
    """``{cli-help} gluon_resnet.train``: the module's ``main(["--help"])`` output as a literal block."""
    required_arguments = 1

    def run(self):
        module = importlib.import_module(self.arguments[0])
        out, argv0 = io.StringIO(), sys.argv[0]
        sys.argv[0] = f"python -m {self.arguments[0]}"  # argparse's prog, as a reader types it
        try:
            with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
                module.main(["--help"])
        finally:
            sys.argv[0] = argv0
        text = out.getvalue().rstrip()
        if not text:
            raise self.error(f"{self.arguments[0]}.main(['--help']) printed nothing")
        return [nodes.literal_block(text, text, language="text")]


def copy_mathjax(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    import jupyter_server_mathjax
    source = Path(jupyter_server_mathjax.__file__).parent / "static"
    target = Path(app.outdir) / "_static" / "mathjax"
    if not (target / "MathJax.js").exists():
        shutil.copytree(source, target, dirs_exist_ok=True)


def setup(app):
    app.connect("source-read", relink_chapters)
    app.connect("doctree-read", add_chapter_header)
    app.connect("build-finished", copy_mathjax)
    app.add_directive("cli-help", CliHelp)
    app.add_css_file("book.css")
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
