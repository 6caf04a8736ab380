# Two commands on a fresh machine: `make run` and `make test` (see README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Unsloth without its GPU-only dependencies: its CPU backend trains the tests' tiny model (pyproject.toml, `local`)
UNSLOTH := 'unsloth==2026.10.9' 'unsloth_zoo==2026.10.9'

.PHONY: run test bench demo install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet 'torch==2.13.0'
	$(BIN)/pip install --quiet -e '.[test,local]'
	$(BIN)/pip install --quiet --no-deps $(UNSLOTH)
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/ft-cli db init
	$(BIN)/ft-cli serve

test: $(STAMP)
	./tests/support/ensure-postgres
	$(BIN)/pytest

# The whole lifecycle against a local OpenAI sandbox, on the embedded store: no account needed.
demo: $(STAMP)
	$(BIN)/ft-cli db init
	$(BIN)/ft-cli demo

bench: $(STAMP)
	./tests/support/ensure-postgres
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .ft .pytest_cache
