# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv if needed and installs the
# package with the exact tested stack (constraints.txt). Everything runs offline once installed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lavis-latent-installed
PYTEST_ARGS ?=

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# never try the network for a file a config names by URL (lavis_latent.common.offline_checks): say what is missing
export LAVIS_LATENT_OFFLINE := 1

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --constraint constraints.txt --editable ".[lavis,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -W ignore::FutureWarning -m lavis_latent.demo

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) cache output demo_output
