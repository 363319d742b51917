# Everything a fresh machine needs is installed by these targets (uv, Python deps),
# cached outside the repository under $(CACHE).
SHELL := /bin/bash
CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/marketlake
UV_VERSION := 0.13.8
UV := $(CACHE)/bootstrap/bin/uv
RUN := $(UV) run --frozen
export UV_CACHE_DIR ?= $(CACHE)/uv
export UV_PYTHON_DOWNLOADS := never

.PHONY: help setup system-deps demo test test-fast bench lint format clean

help: ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	python3 -m venv $(CACHE)/bootstrap
	$(CACHE)/bootstrap/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python 3.11
	@touch $@

setup: .venv/.synced ## install uv and the locked dependencies

system-deps: ## Java and Maven for the stack's services (apt, only when missing)
	@command -v java >/dev/null && command -v mvn >/dev/null || { \
		echo "installing Java and Maven (apt)"; \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq default-jdk-headless maven; }

demo: setup ## simulate one trading day on the embedded stack and print its summary
	$(RUN) marketlake demo

test: setup system-deps ## lint, type-check and run every test (starts Kafka itself)
	$(MAKE) --no-print-directory lint
	$(RUN) pytest

test-fast: setup ## unit tests only
	$(RUN) pytest -m unit -q

bench: setup system-deps ## print the benchmark figures
	$(RUN) marketlake bench matcher
	$(RUN) marketlake bench bars
	$(RUN) marketlake bench kafka

lint: setup ## ruff check + format check, mypy on streaming/
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy

format: setup ## apply ruff fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

clean: ## remove the virtual environment and local outputs
	rm -rf .venv data .pytest_cache .mypy_cache .ruff_cache
