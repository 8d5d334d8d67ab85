# Two entry points (see README): `make report` and `make test`. Both install what they need
# into a local virtual environment (.venv) first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?= -n 2

.PHONY: report test test-fast install install-dev benchmark clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (found " + sys.version.split()[0] + "); set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Validate the bundled sample, derive its outcome tables and render its cohort report under reports/sample/
report: $(VENV)/.installed
	$(BIN)/ketamine-outcomes validate data/sample
	$(BIN)/ketamine-outcomes outcomes data/sample --out reports/sample/outcomes
	$(BIN)/ketamine-outcomes report --out reports/sample

## Run the test suite (simulation studies run at the reduced size set by KO_SIM_REPS)
test: $(VENV)/.installed-dev
	scripts/install-test-services.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## The fast lane for day-to-day work: everything but the tests marked slow (simulation studies, renders, the wheel)
test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS) -m "not slow"

## Speed and memory benchmarks (not part of the tests): every benchmarks/bench_*.py, figures go to docs/performance.md.
## They run in the environment the tests use (.venv, pandas 3); lifelines, compared against, needs pandas < 3 and
## runs in an environment of its own (.venv-lifelines), only for its comparison rows (benchmarks/_lifelines.py).
benchmark: $(VENV)/.installed-dev
	@test -x .venv-lifelines/bin/python || $(PYTHON) -m venv .venv-lifelines
	@.venv-lifelines/bin/python -c 'import lifelines, pyarrow' 2>/dev/null || \
		.venv-lifelines/bin/python -m pip install --quiet 'lifelines>=0.28' 'pandas<3' 'pyarrow>=14'
	cd benchmarks && for b in bench_*.py; do \
		echo "== $$b"; KO_LIFELINES_PYTHON=../.venv-lifelines/bin/python ../$(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .venv-bench .venv-lifelines reports/sample .pytest_cache build dist
