# Entry points for a fresh machine: `make demo`, `make test` (everything) and `make test-fast` (no test
# marked slow, i.e. over 10 s). Each creates .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# `make install TORCH_INDEX=https://download.pytorch.org/whl/cpu`: torch's CPU-only build, without the
# CUDA libraries (about 4.5 GB less), wherever that index is reachable (README: "Install size").
TORCH_INDEX ?=
# setuptools prints an "Editable installation" banner for each `pip install -e`, even with -q; it warns
# about a layout this project does not have (a folder shadowing the package), so it is filtered out.
EDITABLE := PYTHONWARNINGS="ignore:Editable installation" $(PIP) install -q -e

.PHONY: install demo test test-fast lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml plugins/egotask-ocr/pyproject.toml plugins/egotask-ocr/requirements-headless.txt Makefile
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first: on the project's CPU machines 2.14.1 + torchvision 0.29.1 come from local disk.
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(EDITABLE) ".[dev]"
	# The OCR baseline is a separate distribution, a third-party plugin. rapidocr-onnxruntime asks for
	# opencv-python, the GUI build of the OpenCV lmms-eval installs headless, and both would share one
	# cv2/ folder: so its real needs, with the headless build, come from requirements-headless.txt, and it
	# and the plugin install without their declared dependencies (hence no conflict warning either).
	# A venv made before this had opencv-python over the same cv2/ folder: remove it, and reinstall the
	# headless build, whose files went with it.
	if $(PIP) show -q opencv-python >/dev/null 2>&1; then $(PIP) uninstall -q -y opencv-python && \
		$(PIP) install -q --force-reinstall --no-deps opencv-python-headless; fi
	$(PIP) install -q -r plugins/egotask-ocr/requirements-headless.txt
	$(EDITABLE) plugins/egotask-ocr --no-deps --no-warn-conflicts "rapidocr-onnxruntime>=1.3"
	touch $@

demo: install
	$(VENV)/bin/egotask demo

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) egotask_demo .pytest_cache
