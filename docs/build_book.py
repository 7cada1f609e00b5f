"""Build the book: docs/ and the committed chapter notebooks -> site/ (HTML), warnings as errors.

    .venv/bin/python docs/build_book.py            # what `make book` runs
    .venv/bin/python docs/build_book.py --out DIR  # somewhere else

The notebooks are not executed: the pages show the outputs committed with them.
"""
import argparse
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NEEDED = {"sphinx": "sphinx", "myst_nb": "myst-nb", "sphinx_book_theme": "sphinx-book-theme",
          "jupyter_server_mathjax": "jupyter-server-mathjax"}


def missing_packages():
    return [dist for module, dist in NEEDED.items() if importlib.util.find_spec(module) is None]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "site"), help="the output folder (default: site/)")
    args = parser.parse_args(argv)
    missing = missing_packages()
    if missing:
        print(f"error: the book needs {', '.join(missing)}: run `make book`, or "
              f"`{sys.executable} -m pip install -r requirements-docs.txt`", file=sys.stderr)
        return 2
    from sphinx.cmd.build import build_main
    doctrees = ROOT / "build" / "book-doctrees"
    return build_main(["-b", "html", "-E", "-W", "--keep-going", "-q",  # -E: every page anew (10-20 s)
                      "-d", str(doctrees), str(HERE), args.out])


if __name__ == "__main__":
    sys.exit(main())
