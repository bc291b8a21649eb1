# Quick start: `make demo` runs the embedding example on the local backend; `make test` runs the tests.
# Both create ./.venv on first use and reuse it afterwards.

PYTHON ?= python3
VENV ?= .venv
# A plain `torch` requirement would pull a CUDA build of several GB; this version resolves to
# the CPU wheel where one is available locally (pip's find-links) and is enough for the examples.
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python

.PHONY: demo test typecheck clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[examples,dev,docker,modal,aws,cloudrun,plan]"
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/embeddings.py

test: $(VENV)/.installed
	$(PY) -m mypy gpuserve
	$(PY) -m pytest

typecheck: $(VENV)/.installed
	$(PY) -m mypy gpuserve

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
