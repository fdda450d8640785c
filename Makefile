# Two commands on a fresh machine:  `make serve`  and  `make test`.
# Both create .venv with Python 3.11 and install the pinned dependencies (requirements.lock)
# when needed.

VENV ?= .venv
BIN := $(VENV)/bin
# The project runs on Python 3.11 only (pyproject.toml): python3.11 when there is one, else
# python3 if that is 3.11. `make PYTHON=/path/to/python3.11` chooses another.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null || echo python3)
WANT := 3.11
VERSION_OF = $(shell $(1) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | sha1sum | cut -c1-12)-py$(call VERSION_OF,$(BIN)/python)

.PHONY: install venv serve test lint bench contracts lock graphiql

# A .venv of another Python (made by hand, or by an older Makefile with python3 = 3.12) is
# rebuilt, never reused: the install would fail in it on every run.
venv:
	@found="$(call VERSION_OF,$(PYTHON))"; if [ "$$found" != "$(WANT)" ]; then \
	  echo "This project needs Python $(WANT); $(PYTHON) is $${found:-not a Python}."; \
	  echo "Install python$(WANT) (e.g. apt install python$(WANT) python$(WANT)-venv, or pyenv)," \
	       "or run: make PYTHON=/path/to/python$(WANT) ..."; \
	  exit 1; fi
	@if [ -e $(BIN)/python ] && [ "$(call VERSION_OF,$(BIN)/python)" != "$(WANT)" ]; then \
	  echo "$(VENV) is Python $(call VERSION_OF,$(BIN)/python), not $(WANT): rebuilding it."; \
	  rm -rf $(VENV); fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml requirements.lock
	$(MAKE) --no-print-directory venv
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | sha1sum | cut -c1-12)-py$(WANT)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/passport serve --demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy service tests bench migrations examples

test: lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/core.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/reads.py
	$(BIN)/python bench/passport_list.py
	$(BIN)/python bench/read_cpu.py
	$(BIN)/python bench/matching.py
	$(BIN)/python bench/career.py
	$(BIN)/python bench/exports.py
	$(BIN)/python bench/wallet.py
	$(BIN)/python bench/team_check.py

contracts: $(STAMP)
	$(BIN)/passport openapi
	$(BIN)/passport graphql-schema

# Re-vendor GraphiQL and React from the npm registry (service/api/graphiql/README.md).
graphiql:
	service/api/graphiql/update.sh

lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable --all | grep -v '^pip==' > requirements.lock
