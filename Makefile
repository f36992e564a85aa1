# Entry points for a fresh machine: `make demo`, `make test` (everything) and `make test-fast` (no test
# marked slow, i.e. over 10 s). Each creates .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: install demo test test-fast lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml plugins/egotask-ocr/pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first: on the project's CPU machines 2.14.1 + torchvision 0.29.1 come from local disk.
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	# The OCR baseline is a separate distribution, installed like any third-party plugin.
	$(PIP) install -q -e ".[dev]" -e plugins/egotask-ocr
	touch $@

demo: install
	$(VENV)/bin/egotask demo

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) egotask_demo .pytest_cache
