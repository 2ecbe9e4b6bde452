# The same targets CI runs. `make up` brings the service up on embedded defaults
# (SQLite, a local Redis) and ingests a demo fiction; `make test` runs the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv up down test lint bench clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

up: venv
	scripts/ensure_services.sh
	scripts/up.sh

down:
	scripts/down.sh

test: venv
	scripts/ensure_services.sh --postgres
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

bench: venv
	scripts/ensure_services.sh --postgres
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
