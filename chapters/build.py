"""Build the chapter notebooks from their sources in ``chapters/src/`` and execute them.

    python chapters/build.py                 # every chapter, full mode (what the committed outputs come from)
    python chapters/build.py 03 --quick      # one chapter, quick mode (tiny subsets, one epoch)
    python chapters/build.py 05 --text-only  # new prose, same outputs (only if no code cell changed)

A source is a plain Python file in jupytext's "percent" format: ``# %%`` starts a code cell and
``# %% [markdown]`` a text cell whose lines start with ``# ``; jupytext reads it. What jupytext
does not do stays here: quick mode, execution in a fresh kernel with nbclient, timing metadata,
and ``--text-only`` (new prose, old outputs, refused when a code cell changed). The kernel runs
in ``chapters/`` with this checkout first on ``PYTHONPATH``, so the notebooks import this copy
of gluon_resnet.
"""
import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # this checkout's gluon_resnet, whatever is installed

from gluon_resnet.files import atomic_write  # noqa: E402
SOURCES = HERE / "src"
KERNELSPEC = {"name": "gluon_resnet", "display_name": "Python (gluon_resnet)", "language": "python"}


def chapter_names():
    """Stems of the chapter sources ``NN_*.py``, in order."""
    return sorted(p.stem for p in SOURCES.glob("[0-9][0-9]_*.py"))


def parse_source(text):
    """Cells of a percent-format source as a new notebook (nothing executed), read by jupytext."""
    nb = jupytext.reads(text, fmt="py:percent")
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    return nb


def read_source(name):
    """The notebook of ``src/NAME.py``."""
    return parse_source((SOURCES / f"{name}.py").read_text(encoding="utf-8"))


def kernel_env(quick):
    """The kernel's environment: this checkout first on the path, quick mode on or off."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env["GLUON_RESNET_QUICK"] = "1" if quick else "0"
    return env


def execute(nb, quick, timeout=None, progress=None):
    """Run every cell in a fresh kernel (in ``chapters/``); a cell error raises ``CellExecutionError``."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(HERE)}})
    if progress is not None:
        client.on_cell_executed = lambda cell, cell_index, execute_reply: progress.update(1)
    start, load = time.perf_counter(), os.getloadavg()
    client.execute(env=kernel_env(quick))
    nb.metadata["gluon_resnet"] = {
        "mode": "quick" if quick else "full",
        "minutes": round((time.perf_counter() - start) / 60, 1),
        "load_average_at_start": [round(v, 2) for v in load],
        "executed_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
    }
    return nb


def write_notebook(nb, path):
    """Write the notebook through the package's atomic writer (never a half-written file)."""
    atomic_write(path, nbformat.writes(nb) + "\n")


def build(name, quick=False, execute_cells=True, timeout=None):
    """Source ``src/NAME.py`` to ``NAME.ipynb``, executed unless ``execute_cells`` is false."""
    from tqdm import tqdm

    nb = read_source(name)
    if execute_cells:
        code_cells = sum(c.cell_type == "code" for c in nb.cells)
        with tqdm(total=len(nb.cells), desc=name[:24], disable=not sys.stderr.isatty()) as bar:
            execute(nb, quick, timeout=timeout, progress=bar)
        print(f"{name}: {code_cells} code cells in {nb.metadata['gluon_resnet']['minutes']} min "
              f"({'quick' if quick else 'full'} mode)")
    write_notebook(nb, HERE / f"{name}.ipynb")
    return nb


def refresh_text(name):
    """Copy the source's markdown into the executed notebook, keeping its outputs.

    Allowed only while the code cells are unchanged, so no output can disagree with its code.
    """
    fresh = read_source(name)
    path = HERE / f"{name}.ipynb"
    old = nbformat.read(path, as_version=4)
    code = [c.source for c in old.cells if c.cell_type == "code"]
    if code != [c.source for c in fresh.cells if c.cell_type == "code"]:
        raise SystemExit(f"error: the code of {name} changed since it ran; run python chapters/build.py {name[:2]}")
    outputs = iter(c for c in old.cells if c.cell_type == "code")
    for i, cell in enumerate(fresh.cells):  # a text cell in the same place keeps its id: smaller diffs
        if cell.cell_type == "markdown" and i < len(old.cells) and old.cells[i].cell_type == "markdown":
            cell.id = old.cells[i].id
    old.cells = [next(outputs) if c.cell_type == "code" else c for c in fresh.cells]
    write_notebook(old, path)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python chapters/build.py",
        description="Turn chapters/src/*.py into notebooks and execute them, writing chapters/*.ipynb "
                    "with their outputs. Full mode is what the committed notebooks carry.")
    parser.add_argument("chapters", nargs="*", metavar="CHAPTER",
                        help="chapter numbers or names, e.g. 03 or 03_training_on_fashion_mnist (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="quick mode (GLUON_RESNET_QUICK=1): tiny subsets and one epoch, as the tests run them")
    parser.add_argument("--no-execute", action="store_true", help="only convert; leave the outputs empty")
    parser.add_argument("--text-only", action="store_true",
                        help="update the prose of already-executed notebooks, keeping their outputs "
                             "(refused when a code cell changed)")
    parser.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell (default: no limit)")
    args = parser.parse_args(argv)
    names = chapter_names()
    chosen = [n for n in names if not args.chapters or any(n.startswith(c) for c in args.chapters)]
    if not chosen:
        print(f"error: no chapter matches {' '.join(args.chapters)}; choose from {', '.join(names)}",
              file=sys.stderr)
        return 2
    for name in chosen:
        if args.text_only:
            refresh_text(name)
            continue
        build(name, quick=args.quick, execute_cells=not args.no_execute, timeout=args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
