# Two commands from a fresh clone: `make run` (no root, no browser) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

# Debian packages the suite needs, as command:package. The service runs without them:
# qemu-img only serves the image_conversion import plugin, chromium only the browser tests.
SYSTEM_DEPS := qemu-img:qemu-utils chromium:chromium

.PHONY: install run system-deps test test-fast fuzz lint migrations-check install-check bench bench-keystone

# The service alone (`pip install -e .`, no extras).
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e .
	touch $@

# The test extra and the stand-in third-party plugin, on top of the service.
$(VENV)/.installed-test: $(VENV)/.installed tests/thirdparty_plugin/pyproject.toml
	$(VENV)/bin/pip install -q -e '.[test]'
	$(VENV)/bin/pip install -q -e tests/thirdparty_plugin
	touch $@

run: install
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py seed_demo
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

# Installs (as root, through apt-get) only what is missing.
system-deps:
	@missing=""; \
	for dep in $(SYSTEM_DEPS); do \
		command -v "$${dep%%:*}" >/dev/null || missing="$$missing $${dep#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "apt-get install$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

test: system-deps $(VENV)/.installed-test
	$(VENV)/bin/pytest

# Everything but the live-server and browser tests (the conversion tests still need qemu-img).
test-fast: $(VENV)/.installed-test
	$(VENV)/bin/pytest -m "not live and not browser"

# schemathesis against a live server from its /openapi.json, as admin, owner and reader
# (tests/fuzz/run.py): SQLite, or PostgreSQL with DATABASE_URL. FUZZ_SEED=<n> replays a run.
fuzz: $(VENV)/.installed-test
	$(PY) -m tests.fuzz.run $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

migrations-check: install
	$(PY) manage.py makemigrations --check --dry-run

# A clean venv with `pip install .` only, serving one upload: catches undeclared dependencies.
install-check:
	python3 scripts/install_check.py

bench: install
	$(PY) benchmarks/api.py
	$(PY) benchmarks/data.py
	$(PY) benchmarks/imports.py
	$(PY) benchmarks/stores.py

# Keystone mode beside local mode; starts scripts/keystone-aio.sh (installs Keystone once).
bench-keystone: install
	$(PY) benchmarks/keystone.py
