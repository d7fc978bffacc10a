# Two commands from a fresh clone: `make run` (no root, no browser) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

# Debian packages the suite needs, as command:package. The service runs without them:
# qemu-img only serves the image_conversion import plugin, chromium only the browser tests.
SYSTEM_DEPS := qemu-img:qemu-utils chromium:chromium

.PHONY: install run system-deps ceph-packages ceph-bindings test test-deps test-parallel test-serial test-fast fuzz lint migrations-check install-check bench bench-keystone cluster-test

# Debian's python3-rados and python3-rbd (the only builds of Ceph's bindings for CPython 3.11)
# are made visible to the venv alone: a .pth names a directory holding links to just those two
# extension modules, so nothing else of Debian's dist-packages leaks in. Does nothing when the
# packages are absent (scripts/ceph-aio.sh installs them); the rbd store's system check
# (imageservice.E011) says what to install when an rbd store is configured without them.
CEPH_DIST_PACKAGES ?= /usr/lib/python3/dist-packages
CEPH_BINDINGS := $(VENV)/ceph-bindings

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

# The Ceph packages the rbd store tests need (installed as root through apt-get when missing).
ceph-packages:
	@scripts/ceph-aio.sh install

ceph-bindings: $(VENV)/.installed
	@modules=$$(ls $(CEPH_DIST_PACKAGES)/rados.cpython-311-*.so $(CEPH_DIST_PACKAGES)/rbd.cpython-311-*.so 2>/dev/null); \
	if [ -n "$$modules" ]; then \
		rm -rf $(CEPH_BINDINGS) && mkdir -p $(CEPH_BINDINGS) && ln -s $$modules $(CEPH_BINDINGS)/; \
		site=$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("platlib"))'); \
		realpath $(CEPH_BINDINGS) >"$$site/ceph-bindings.pth"; \
	fi

run: install ceph-bindings
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

# The suite in TEST_WORKERS processes (pytest-xdist; the tests on the shared Ceph pool in one of
# them, Keystone's in one), then the few that stop a shared service, alone (test-parallel, then
# test-serial). TEST_WORKERS=0: one process. TEST_ARGS adds pytest options and TEST_SELECT a
# marker expression (.ci/run's PostgreSQL run: --database-tests-only, "not browser and …").
TEST_WORKERS ?= 4
TEST_SELECT ?=
select = $(if $(TEST_SELECT), and ($(TEST_SELECT)))
test: test-parallel test-serial

test-deps: system-deps ceph-packages ceph-bindings $(VENV)/.installed-test

test-parallel: test-deps
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup -m "not serial$(select)" $(TEST_ARGS)

test-serial: test-deps
	$(VENV)/bin/pytest -m "serial$(select)" $(TEST_ARGS)

# Everything but the live-server and browser tests (the conversion tests still need qemu-img).
test-fast: ceph-packages ceph-bindings $(VENV)/.installed-test
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

bench: install ceph-bindings
	$(PY) benchmarks/api.py
	$(PY) benchmarks/data.py
	$(PY) benchmarks/imports.py
	$(PY) benchmarks/console.py
	$(PY) benchmarks/stores.py

# Keystone mode beside local mode; starts scripts/keystone-aio.sh (installs Keystone once).
bench-keystone: install
	$(PY) benchmarks/keystone.py

# The scale-out chaos test (docs/scale-out-test.md): 2 API nodes and 2 job workers on PostgreSQL,
# Redis and a Swift of its own, one of each killed mid-run; ~5 minutes. PostgreSQL and Redis must
# be running (.ci/run starts them); the database is dropped and created again.
CLUSTER_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/imageservice_cluster
CLUSTER_REDIS_URL ?= redis://127.0.0.1:6379/2
cluster-test: install
	CLUSTER_DATABASE_URL=$(CLUSTER_DATABASE_URL) CLUSTER_REDIS_URL=$(CLUSTER_REDIS_URL) \
		$(PY) scripts/cluster_test.py
