# Two commands on a fresh machine:  `make serve`  and  `make test`.
# Both create .venv and install the pinned dependencies (requirements.lock) when needed.

VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | sha1sum | cut -c1-12)

.PHONY: install serve test lint bench contracts lock

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/passport serve --demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy service tests bench migrations

test: lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/core.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/reads.py
	$(BIN)/python bench/passport_list.py
	$(BIN)/python bench/matching.py
	$(BIN)/python bench/exports.py
	$(BIN)/python bench/team_check.py

contracts: $(STAMP)
	$(BIN)/passport openapi
	$(BIN)/passport graphql-schema

lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable --all | grep -v '^pip==' > requirements.lock
