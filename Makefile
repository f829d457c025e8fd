# Everything a fresh machine needs, from scratch: `make repro` and `make test`.
# The environment comes from requirements.lock only: every package, transitively, at an exact
# version with its hashes (docs/reproducibility.md). `make lock` regenerates it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_TOOLS := pip-tools==7.6.2
LOCK_VENV := .lock-venv

.PHONY: setup repro test test-all bench check-repro lock clean-venv

setup: $(STAMP)

# --require-hashes: nothing outside the lock is installed, and every file is the one locked.
# The project itself goes in editable, without dependencies and without a build environment
# (setuptools comes from the lock), so no unpinned package enters the venv.
$(STAMP): requirements.lock pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --quiet --no-deps --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --no-index -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

# The main job: the whole DVC pipeline on the built-in synthetic data (default profile).
# Stage commands call `python`: the venv's must come first on PATH.
repro: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

# The default test suite (fast); `test-all` adds the slow end-to-end checks.
test: setup
	$(BIN)/python -m pytest -q

test-all: setup
	$(BIN)/python -m pytest -q -m ""

# After `make repro`: the data stages reproduce the committed dvc.lock byte for byte and the
# amodal AP is within tolerance of the committed one (what .ci/run checks on a clean clone).
check-repro: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python .ci/check_reproduced.py
	DAISNET_REQUIRE_TRAINED=1 $(BIN)/python -m pytest -q -m trained

bench: setup
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

# Regenerate requirements.lock from pyproject.toml's ranges (newest versions the indexes offer).
# `make lock LOCK_ARGS=--upgrade` moves every pin to the newest release. Then `make repro` and commit the lock with dvc.lock if any output moved.
lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet $(PIP_TOOLS)
	$(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --extra dev --strip-extras \
		--no-emit-index-url --no-emit-find-links $(LOCK_ARGS) --output-file requirements.lock pyproject.toml
	rm -rf $(LOCK_VENV)

clean-venv:
	rm -rf $(VENV)
