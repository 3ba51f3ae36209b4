# recstream developer commands. `make help` lists them.
SHELL := /bin/bash
PY := .venv/bin/python
RECSTREAM := .venv/bin/recstream
PYTEST_ARGS ?=
DATASET ?= deploy/local/sample/movielens

# Writable paths of every target: this checkout's layout (.stack/, artifacts/, reports/, and
# the Markdown reports of bench and soak in docs/), passed explicitly. They equal the defaults
# recstream/settings.py picks when it runs from a checkout, so `make test` and a hand-typed
# `.venv/bin/recstream stack up` share one stack. With RECSTREAM_HOME set, every path follows it
# instead, for make as for the `recstream` command; a RECSTREAM_*_DIR already set wins.
ifndef RECSTREAM_HOME
export RECSTREAM_STACK_DIR ?= $(CURDIR)/.stack
export RECSTREAM_MODEL_DIR ?= $(CURDIR)/artifacts/models
export RECSTREAM_EMBEDDING_CACHE_DIR ?= $(CURDIR)/artifacts/cache
export RECSTREAM_REPORTS_DIR ?= $(CURDIR)/reports
export RECSTREAM_DOCS_DIR ?= $(CURDIR)/docs
endif

.DEFAULT_GOAL := help
.PHONY: help install test test-unit chaos lint audit format demo bench stack-up stack-down stack-status clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-14s %s\n", $$1, $$2}'

.venv/.installed: pyproject.toml deploy/local/install.sh
	bash deploy/local/install.sh
	@touch $@

install: .venv/.installed ## Create .venv/ with every dependency and the `recstream` command (cached: seconds the second time)

# Dependencies: `make install` installs requirements.lock (base + every extra, hashed, no
# resolution); requirements-worker.lock is the base alone (a lean worker: `pip install
# --require-hashes --no-deps -r requirements-worker.lock && pip install --no-deps .`). `make
# lock` re-resolves both from pyproject.toml, keeping today's pins where they still fit
# (LOCK_ARGS=--upgrade: newest allowed versions; --upgrade-package NAME: one package). The
# `-` input adds pip/setuptools/wheel (the editable install's build tools). Linux x86-64,
# glibc >= 2.35 (nvidia-pytriton's wheel), Python 3.11. uv is installed into the cache dir.
.PHONY: lock
.venv/.installed: requirements.lock
UV_VERSION ?= 0.13.9
UV_DIR := $(or $(RECSTREAM_CACHE_DIR),$(HOME)/.cache/recstream)/tools/uv-$(UV_VERSION)
UV := $(UV_DIR)/bin/uv
LOCK_ARGS ?=
LOCK_FLAGS = --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_35 \
	--custom-compile-command "make lock" $(LOCK_ARGS)
LOCK_BUILD_TOOLS = printf 'pip\nsetuptools>=68\nwheel\n'

$(UV):
	rm -rf $(UV_DIR) && python3 -m venv $(UV_DIR) && $(UV_DIR)/bin/pip install -q "uv==$(UV_VERSION)"

lock: $(UV) ## Re-resolve requirements.lock from pyproject.toml (uv, hashes)
	$(LOCK_BUILD_TOOLS) | $(UV) pip compile pyproject.toml - --all-extras $(LOCK_FLAGS) -o requirements.lock >/dev/null
	$(LOCK_BUILD_TOOLS) | $(UV) pip compile pyproject.toml - -c requirements.lock $(LOCK_FLAGS) \
		-o requirements-worker.lock >/dev/null

test: install ## Run the whole suite against real Kafka, Cassandra and Triton (started if not up; minutes-long chaos tests excluded)
	@set +e; $(PY) -m pytest -m "not long" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

test-unit: install ## Run only the tests that need no server
	$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

chaos: install ## Fault injection on an isolated second stack (tests/chaos): reports/chaos/*.json, docs/RELIABILITY.md
	@set +e; $(PY) -m pytest tests/chaos $(PYTEST_ARGS); rc=$$?; \
	$(PY) -m tests.chaos.report; rrc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make chaos: pytest collected no tests: failing" >&2; exit 1; fi; \
	if [ $$rc -eq 0 ] && [ $$rrc -ne 0 ]; then echo "make chaos: the report could not be rendered" >&2; exit $$rrc; fi; exit $$rc

lint: install ## ruff format check, ruff lint, mypy, import-linter layers (.importlinter), dependency audit (warns if its service is unreachable)
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m mypy recstream streams encoders serving schemas deploy
	$(PY) -c 'import sys; from importlinter.cli import lint_imports_command; sys.argv[0] = "lint-imports"; lint_imports_command()'
	@$(MAKE) --no-print-directory audit AUDIT_IF_UNREACHABLE=warn

AUDIT_IF_UNREACHABLE ?= fail
audit: install ## pip-audit of the locked dependencies; exceptions only in deploy/local/audit.py
	$(PY) -m deploy.local.audit --if-unreachable $(AUDIT_IF_UNREACHABLE)

format: install ## Apply ruff formatting and safe fixes
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

stack-up: install ## Start the local stack and wait until healthy
	$(RECSTREAM) stack up

stack-down: install ## Stop the processes the local stack started
	$(RECSTREAM) stack down

stack-status: install ## Health of each local server
	$(RECSTREAM) stack status

demo: install ## Bring the stack up and run the live demo (Ctrl-C stops what it started)
	$(RECSTREAM) demo --dataset movielens:$(DATASET)

bench: install ## Benchmarks: print figures, write reports/bench.json and docs/BENCHMARKS.md
	$(RECSTREAM) bench --out reports/bench.json

.PHONY: image-worker
IMAGE_ARGS ?=
image-worker: ## Build the worker image (wheel + locked deps, read-only, non-root) with podman: deploy/docker/build-worker-image.sh
	bash deploy/docker/build-worker-image.sh $(IMAGE_ARGS)

clean: ## Remove local state (.stack/) and build caches (keeps the dependency cache)
	-$(RECSTREAM) stack down
	rm -rf .stack .pytest_cache .mypy_cache .ruff_cache reports
