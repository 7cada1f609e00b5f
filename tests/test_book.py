"""The book (`make book` -> site/) read the way a reader reads it: in headless Chromium, with no network.

`make test` builds the site first. Without a built site or without Chromium these tests skip on a
developer's machine and fail in CI (CI=true), each with the one line that says what to install.
"""
import functools
import json
import os
import re
import threading
import urllib.parse
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cdp import INSTALL, Chromium, find_browser
from helpers import ROOT

SITE = ROOT / "site"
SHOTS = ROOT / "build" / "book-screenshots"
CHAPTERS = sorted(p.stem for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(message):
    """Fail in CI, where the setup must have installed everything; skip elsewhere. One line either way."""
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def chapter_title(name):
    """The chapter's '# N. ...' heading, as its notebook's first cell writes it."""
    cells = json.loads((ROOT / "chapters" / f"{name}.ipynb").read_text())["cells"]
    return "".join(cells[0]["source"]).splitlines()[0].lstrip("# ").strip()


def plain(text):
    """Text as a page shows it, compared loosely: no markup, straight quotes, one space."""
    text = text.replace("’", "'").replace("‘", "'").replace("`", "").replace("*", "").replace("#", "")
    return " ".join(text.split())


@pytest.fixture(scope="module")
def site():
    if not (SITE / "index.html").exists():
        unavailable("the book is not built: run `make book` (it builds site/ from docs/ and chapters/)")
    return SITE


@pytest.fixture(scope="module")
def server(site):
    """The site over HTTP on 127.0.0.1 (search loads its index by script, as on a real host)."""
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    binary = os.environ.get("CHROMIUM") or find_browser()
    if not binary:
        unavailable(INSTALL)
    try:
        import websocket  # noqa: F401
    except ImportError:
        unavailable("websocket-client is missing: run `make book-setup` (pip install -r requirements-docs.txt)")
    chrome = Chromium(binary, tmp_path_factory.mktemp("chromium-profile"))
    yield chrome
    chrome.close()


def page_state(browser):
    """What a reader sees: the h1, the article's images and whether each loaded, the links' targets."""
    return browser.evaluate("""(() => {
        const main = document.querySelector('main') || document.body;
        const h1 = main.querySelector('h1');
        return {
            title: h1 ? h1.textContent : null,
            images: [...main.querySelectorAll('img')].map(i => ({src: i.currentSrc || i.src,
                                                                complete: i.complete, width: i.naturalWidth})),
            header: [...main.querySelectorAll('.chapter-header a')].map(a => [a.textContent, a.href]),
            next: (document.querySelector('a.right-next') || {}).href || null,
        };
    })()""")


def test_the_home_page_lists_every_chapter_and_guide_page(browser, server):
    browser.goto(f"{server}/index.html")
    state = page_state(browser)
    assert "Residual networks" in state["title"]
    links = browser.evaluate("[...document.querySelectorAll('main a.internal')].map(a => a.href)")
    for name in CHAPTERS:
        assert f"{server}/chapters/{name}.html" in links, name
    sidebar = browser.evaluate("[...document.querySelectorAll('nav.bd-links a')].map(a => a.textContent.trim())")
    for page in ("Training and the run folder", "Models", "Using a trained model", "Benchmarks", "Results",
                 "When things go wrong", "Scaling out", "Layout: where to change what", "Tests", "API reference"):
        assert page in sidebar, (page, sidebar)
    assert state["next"] == f"{server}/chapters/{CHAPTERS[0]}.html"
    browser.screenshot(SHOTS / "home.png")


@pytest.mark.parametrize("index", range(len(CHAPTERS)), ids=CHAPTERS)
def test_each_chapter_renders_with_its_figures_links_and_a_working_next_link(browser, server, index):
    name = CHAPTERS[index]
    browser.goto(f"{server}/chapters/{name}.html")
    state = page_state(browser)
    assert plain(state["title"]) == plain(chapter_title(name))
    figures = [img for img in state["images"] if "/_images/" in img["src"]]
    assert figures, "no figure rendered"
    assert all(img["complete"] and img["width"] > 0 for img in figures), [i for i in figures if not i["width"]]

    header = dict(state["header"])
    assert header["English"] == "https://d2l.ai/chapter_convolutional-modern/resnet.html"
    assert header["中文"] == "https://zh.d2l.ai/chapter_convolutional-modern/resnet.html"
    assert header["arXiv:1512.03385"] == "https://arxiv.org/abs/1512.03385"
    targets = [href for _, href in state["header"]]
    before = f"{server}/chapters/{CHAPTERS[index - 1]}.html" if index else f"{server}/index.html"
    assert before in targets
    if index + 1 < len(CHAPTERS):
        after = f"{server}/chapters/{CHAPTERS[index + 1]}.html"
        assert after in targets and state["next"] == after
    # the next link works: a click lands on a page with its own title
    browser.evaluate("document.querySelector('a.right-next').click()")
    browser.wait_for(f"location.href === {json.dumps(state['next'])} && document.readyState === 'complete'",
                     what="the next page")
    assert page_state(browser)["title"]

    if name.startswith("05"):
        browser.goto(f"{server}/chapters/{name}.html")
        browser.screenshot(SHOTS / "chapter05-top.png")
        browser.evaluate("window.scrollTo(0, document.querySelector('main img[src*=\"_images/\"]')"
                         ".getBoundingClientRect().top + window.scrollY - 140)")  # the figure and its heading
        browser.screenshot(SHOTS / "chapter05-figure.png")


def test_formulas_are_typeset_offline(browser, server):
    browser.goto(f"{server}/chapters/{CHAPTERS[0]}.html")
    count = browser.wait_for("window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 && "
                             "document.querySelectorAll('main .MathJax, main .MathJax_CHTML').length",
                             what="MathJax to typeset chapter 1")
    assert count > 5


@pytest.mark.parametrize("query, chapter", [("degradation", "05_"), ("Grad-CAM", "08_")])
def test_search_finds_the_chapter(browser, server, query, chapter):
    browser.goto(f"{server}/search.html?q={urllib.parse.quote(query)}")
    hits = browser.wait_for("""(() => {
        const done = document.querySelector('#search-results .search-summary');
        return done && done.textContent.length
            ? [...document.querySelectorAll('#search-results ul.search li a')].map(a => a.href) : null;
    })()""", what=f"the search for {query}")
    pages = [urllib.parse.urlsplit(hit).path for hit in hits]
    found = [i for i, page in enumerate(pages) if page.startswith("/chapters/" + chapter)]
    assert found and found[0] < 5, (query, pages[:10])


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets = []

    def handle_starttag(self, tag, attrs):
        self.targets += [value for key, value in attrs if key in ("href", "src") and value]


def test_every_internal_link_and_source_resolves_to_a_file(site):
    broken, remote_sources = [], []
    pages = sorted(p for p in site.rglob("*.html") if "_static" not in p.parts)  # (theme macros there)
    assert len(pages) > len(CHAPTERS)
    for page in pages:
        parser = Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for target in parser.targets:
            parts = urllib.parse.urlsplit(target)
            if parts.scheme in ("http", "https"):
                if re.search(rf'src="{re.escape(target)}"', page.read_text(encoding="utf-8")):
                    remote_sources.append((page.name, target))
                continue
            if parts.scheme or not parts.path:     # mailto:, data:, javascript:, '#anchor'
                continue
            path = (page.parent / urllib.parse.unquote(parts.path)).resolve()
            if path.is_dir():
                path = path / "index.html"
            if not path.is_file():
                broken.append((str(page.relative_to(site)), target))
    assert not broken, broken[:20]
    assert not remote_sources, remote_sources[:20]   # nothing on a page is fetched from the network
