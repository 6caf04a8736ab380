# Two commands on a fresh machine: `make run` and `make test` (see README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench demo install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
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
