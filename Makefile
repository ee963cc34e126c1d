# Two entry points for a fresh machine:
#   make demo   set everything up, then run the main job
#   make test   set everything up, then run the test suite
# Both create .venv, install torch (torch==$(TORCH_VERSION): the CPU build on a machine
# whose pip is pointed at it, the CUDA build from PyPI elsewhere), build the extension
# in place, and install the test dependencies.

PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
PY := $(VENV)/bin/python
MAX_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
export MAX_JOBS

.PHONY: setup build test demo bench clean park unpark dist-check

$(VENV)/.deps-stamp: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(PY) -m pip install --quiet setuptools wheel ninja "cython>=3.0" numpy
	SYMSATNET_SKIP_EXT=1 $(PY) -m pip install --quiet -e ".[test,all]" --no-build-isolation
	touch $@

setup: $(VENV)/.deps-stamp

# Compile the extension and the Cython solvers in place (incremental: cheap when
# nothing changed).
build: setup
	$(PY) setup.py --quiet build_ext --inplace

test: build
	$(PY) -m pytest -q -x --durations=15

demo: build
	$(PY) -m puzzles.demo

bench: build
	$(PY) benchmarks/bench_mixing.py

# Build the sdist and the wheel, install each into a fresh venv with only torch (the sdist
# also gets its build requirements: it compiles), run a SATNet and a SymSATNet forward and
# backward there, and check the sdist carries every csrc header (tools/dist_check.sh).
# Not part of `make test`: two compilations, several minutes.
dist-check:
	PYTHON=$(PYTHON) TORCH_VERSION=$(TORCH_VERSION) sh tools/dist_check.sh

clean:
	rm -rf build *.egg-info symsatnet/*.so puzzles/**/*.so

# Long runs outlive a session only in git (runs/ is ignored and a new checkout starts
# without it). `make park RUNS="name ..."` copies what `puzzles.train --resume` needs
# (checkpoint, settings, data, logs) from runs/NAME to docs/results/parked/NAME, a file over
# 4 MiB in numbered parts (the repository takes no file over 5 MB), with a manifest of
# sizes and SHA-256; `make unpark` rebuilds and verifies every parked run that runs/ lacks.
# Standard library only: works before `make setup`.
PARK := $(PYTHON) $(dir $(abspath $(firstword $(MAKEFILE_LIST))))tools/park.py

park:
	@test -n "$(RUNS)" || { echo 'usage: make park RUNS="name ..." (folders under runs/)'; exit 2; }
	@$(PARK) park $(RUNS) $(if $(PART_BYTES),--part-bytes $(PART_BYTES))

unpark:
	@$(PARK) unpark
