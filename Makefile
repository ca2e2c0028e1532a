# podioc developer entry points. Two commands matter:
#   make demo   serve the demo IOC on this host (no Docker needed)
#   make test   install and start everything the tests need, then run them all
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint venv bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/podioc run iocs/demo/demo.yaml

test: venv
	bash .ci/test-all.sh

lint: venv
	$(BIN)/ruff check framework iocs tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: venv
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .ci/work
