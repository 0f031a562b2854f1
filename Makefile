# `make sample` and `make test` work on a fresh machine: each sets up .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SAMPLE_OUT ?= out/sample

.PHONY: install sample test lint typecheck check bench clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,video]'
	touch $(STAMP)

install: $(STAMP)

sample: install
	$(BIN)/lvm-data sample --out $(SAMPLE_OUT)

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/lvm-data bench pipeline

# the code's own checks: lint and format (ruff), types (basedpyright, basic mode; config in pyproject.toml)
lint: install
	$(BIN)/ruff check lvm_data pipelines tests benchmarks
	$(BIN)/ruff format --check lvm_data pipelines tests benchmarks

typecheck: install
	$(BIN)/basedpyright --project pyproject.toml

check: lint typecheck test

clean:
	rm -rf $(VENV) out build *.egg-info
