# Two commands from a fresh clone: `make train` (the quick demo) and `make test` (the suite).
# Each one sets itself up: .venv, the pinned packages, and the Fashion-MNIST files.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: train test setup data bench clean-venv

train: setup data
	$(PY) -m gluon_resnet.train --preset quick

test: setup data
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

clean-venv:
	rm -rf $(VENV)
