# Two commands from a fresh clone: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: install run test lint migrations-check bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml tests/thirdparty_plugin/pyproject.toml
	command -v qemu-img >/dev/null || { apt-get update -qq && apt-get install -y -qq qemu-utils; }
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	$(VENV)/bin/pip install -q -e tests/thirdparty_plugin
	touch $@

run: install
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py seed_demo
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

test: install
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

migrations-check: install
	$(PY) manage.py makemigrations --check --dry-run

bench: install
	$(PY) benchmarks/api.py
	$(PY) benchmarks/data.py
	$(PY) benchmarks/imports.py
