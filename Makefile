# The two commands of the README. Everything stays inside this folder: the virtual environment in .venv,
# the AiiDA configuration and profile in .aiida (AIIDA_PATH), so a user's own profiles are never touched.
VENV ?= .venv
BIN := $(VENV)/bin
export AIIDA_PATH ?= $(CURDIR)/.aiida
# verdi (the daemon) and mofal must be on PATH, as in an activated virtual environment
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo test install system lint docs clean

## demo: set up the profile, check the toolchain and run the main job
demo: install
	$(BIN)/mofal setup
	$(BIN)/mofal doctor
	$(BIN)/mofal run examples/campaign_znim2.yaml --report demo-report

## test: lint, build the docs and run the whole test suite
# TEST_WORKERS pytest-xdist workers (tests/conftest.py keeps a file, the shared trained model's users and the
# SLURM tests each on one worker); TEST_WORKERS=0 runs in this process, one test after the other.
TEST_WORKERS ?= 2
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sphinx-build -W -q -b html docs docs/_build/html
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

install: system $(VENV)/.installed

system:
	bash .ci/install-system.sh

$(VENV)/.installed: pyproject.toml requirements/constraints.txt .ci/install-python.sh
	bash .ci/install-python.sh $(VENV)
	touch $@

clean:
	rm -rf docs/_build build dist *.egg-info demo-report
