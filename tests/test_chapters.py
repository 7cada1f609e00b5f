"""The chapter notebooks: each runs headless in quick mode, and the committed ones match their sources."""
import importlib.util
import re
import subprocess
import sys

import nbformat
import pytest

from helpers import ROOT

CHAPTERS = ROOT / "chapters"


def load_build():
    spec = importlib.util.spec_from_file_location("chapters_build", CHAPTERS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = load_build()
NAMES = build.chapter_names()


def committed(name):
    return nbformat.read(CHAPTERS / f"{name}.ipynb", as_version=4)


def test_there_are_eight_chapters():
    assert [n[:2] for n in NAMES] == ["01", "02", "03", "04", "05", "06", "07", "08"]


def test_percent_source_becomes_markdown_and_code_cells():
    nb = build.parse_source("# %% [markdown]\n# # Title\n#\n# Some *text*.\n\n# %%\nx = 1\n\n# %%\nx\n")
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code"]
    assert nb.cells[0].source == "# Title\n\nSome *text*."
    assert nb.cells[1].source == "x = 1"


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_matches_its_source(name):
    from_source = build.parse_source((build.SOURCES / f"{name}.py").read_text())
    assert [(c.cell_type, c.source) for c in committed(name).cells] == \
        [(c.cell_type, c.source) for c in from_source.cells], \
        f"chapters/{name}.ipynb is stale: run python chapters/build.py {name[:2]}"


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_carries_a_full_run(name):
    nb = committed(name)
    assert nb.metadata["gluon_resnet"]["mode"] == "full"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "every code cell was executed"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    last = "".join(o.get("text", "") for o in code[-1].outputs)
    assert re.match(r"full mode: ran in [\d.]+ min", last), last


@pytest.mark.parametrize("name", NAMES)
def test_chapter_runs_headless_in_quick_mode(name):
    nb = committed(name)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    build.execute(nb, quick=True, timeout=300)  # raises CellExecutionError on any failing cell
    last = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert last.startswith("quick mode: ran in"), last


def test_readmes_link_every_chapter():
    index = (CHAPTERS / "README.md").read_text()
    top = (ROOT / "README.md").read_text()
    for name in NAMES:
        assert f"({name}.ipynb)" in index, name
        assert f"chapters/{name}.ipynb" in top, name


def test_build_cli_rejects_an_unknown_chapter_in_one_line():
    out = subprocess.run([sys.executable, str(CHAPTERS / "build.py"), "99", "--no-execute"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.startswith("error: no chapter matches 99") and out.stderr.count("\n") == 1
