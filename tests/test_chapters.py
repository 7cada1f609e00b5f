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
    nb = build.parse_source("# %% [markdown]\n# # Title\n#\n# Some *text*.\n\n"
                            "# %%\n%matplotlib inline\nx = 1\n\n# %%\nx\n")
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code"]
    assert nb.cells[0].source == "# Title\n\nSome *text*."
    assert nb.cells[1].source == "%matplotlib inline\nx = 1"  # the magic stays a magic
    assert nb.metadata["kernelspec"]["name"] == "gluon_resnet"


def test_build_writes_an_unexecuted_notebook_of_any_numbered_source(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "08_extra.py").write_text("# %% [markdown]\n# # Eight\n\n# %%\n1 + 1\n")
    monkeypatch.setattr(build, "SOURCES", tmp_path / "src")
    monkeypatch.setattr(build, "HERE", tmp_path)
    assert build.chapter_names() == ["08_extra"]
    build.build("08_extra", execute_cells=False)
    nb = nbformat.read(tmp_path / "08_extra.ipynb", as_version=4)
    assert [c.source for c in nb.cells] == ["# Eight", "1 + 1"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


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
def test_committed_outputs_are_clean_and_name_the_cpu(name):
    code = [c for c in committed(name).cells if c.cell_type == "code"]
    stderr = [o.text for c in code for o in c.outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"{name} has stderr output (a warning or a stray line): {stderr[:2]}"
    last = "".join(o.get("text", "") for o in code[-1].outputs)
    # the last cell names the CPU model, then (its generation; ...) the threads and cores
    assert re.search(r"min\b.* on .+ \((.+; )?(\d+ threads? on )?\d+ (CPUs|cores)", last), last


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


def test_text_only_keeps_outputs_and_refuses_changed_code(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    source = tmp_path / "src" / "09_demo.py"
    source.write_text("# %% [markdown]\n# Old words.\n\n# %%\n1 + 1\n")
    monkeypatch.setattr(build, "SOURCES", tmp_path / "src")
    monkeypatch.setattr(build, "HERE", tmp_path)
    nb = build.build("09_demo", execute_cells=False)
    nb.cells[1].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
    build.write_notebook(nb, tmp_path / "09_demo.ipynb")
    source.write_text("# %% [markdown]\n# New words.\n\n# %%\n1 + 1\n")
    build.refresh_text("09_demo")
    cells = nbformat.read(tmp_path / "09_demo.ipynb", as_version=4).cells
    assert cells[0].source == "New words." and cells[0].id == nb.cells[0].id
    assert cells[1].outputs[0]["data"]["text/plain"] == "2"
    source.write_text("# %% [markdown]\n# New words.\n\n# %%\n1 + 2\n")
    with pytest.raises(SystemExit, match="changed since it ran"):
        build.refresh_text("09_demo")
