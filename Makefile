# Two commands from a fresh clone: `make train` (the quick demo) and `make test` (the suite).
# Each one sets itself up: .venv, the pinned packages, and the Fashion-MNIST files.
# `make book` builds the book into site/; `make test` builds it too and reads it in headless Chromium.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: train test setup data bench clean-venv book book-setup browser book-test serve-book

train: setup data
	$(PY) -m gluon_resnet.train --preset quick

# The suite includes tests/test_book.py, which opens the built site in headless Chromium.
test: setup data book browser
	$(PY) -m pytest -q

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "installing python3-venv with apt-get"; apt-get update -qq && apt-get install -y -qq python3-venv; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name gluon_resnet --display-name "Python (gluon_resnet)" >/dev/null
	@touch $(STAMP)

# Debian ships the real data set; install it when missing and apt is usable,
# otherwise gluon_resnet downloads it into $MXNET_HOME on first use.
data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's dataset-fashion-mnist"; \
	  apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null; fi

bench: setup data
	$(PY) -m gluon_resnet.bench

# The book: docs/ and the committed chapter notebooks (not executed) -> site/, warnings as errors.
DOCS_STAMP := $(VENV)/.docs-installed

book: book-setup
	$(PY) docs/build_book.py

book-setup: setup $(DOCS_STAMP)

$(DOCS_STAMP): requirements-docs.txt $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-docs.txt
	$(PY) -m pip check
	@touch $(DOCS_STAMP)

# Debian's chromium for the browser test, and a font for the chapters' Chinese (root and apt-get, as in CI).
browser:
	@if ! command -v chromium >/dev/null || ! fc-list :lang=zh 2>/dev/null | grep -q .; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium and fonts-droid-fallback"; \
	    apt-get update -qq && apt-get install -y -qq chromium fonts-droid-fallback >/dev/null; \
	  else echo "chromium is missing: install Debian's chromium and fonts-droid-fallback packages (apt-get install chromium fonts-droid-fallback) for the browser test"; fi; fi

book-test: book browser
	$(PY) -m pytest -q tests/test_book.py

serve-book: book
	$(PY) -m http.server --bind 127.0.0.1 --directory site 8000

clean-venv:
	rm -rf $(VENV)
