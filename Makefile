# Shortcuts for the scripts in scripts/ (which need no make): `scripts/up.sh` brings the
# service up on embedded defaults (SQLite, a local Redis) and ingests a demo fiction;
# `scripts/test.sh` runs the suite.
.PHONY: venv up down test lint bench clean

venv:
	scripts/venv.sh

up:
	scripts/up.sh

down:
	scripts/down.sh

test:
	scripts/test.sh

lint:
	scripts/lint.sh

bench:
	scripts/bench.sh

clean:
	rm -rf .venv data .pytest_cache .mypy_cache .ruff_cache
