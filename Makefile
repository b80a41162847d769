# Set-up and everyday commands. `make run` and `make test` set everything up on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup run search test lint browser bench fuzz clean

setup: $(STAMP)

# torch goes in first, pinned, and stays pinned while the project's dependencies resolve: without the pin
# in that second command pip replaced 2.13.0+cpu with the newest allowed torch and several GB of CUDA
# packages, although the project's range (torch>=2.3,<3) admits the installed one.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==$(TORCH_VERSION)"
	$(BIN)/pip install -q -e ".[dev]" "torch==$(TORCH_VERSION)"
	touch $(STAMP)

# The service on its embedded defaults: SQLite in runs/server, a local Ray, the built-in digits
# dataset; a demo search is queued on first start. Prints the URL and the admin token.
run: setup
	$(BIN)/nas serve --data-dir runs/server --demo --show-token

# The engine alone, without the server: the default search, with a progress bar.
search: setup
	$(BIN)/nas search configs/default.yaml --out runs/default

# Browser tests drive Debian's Chromium through Playwright (never `playwright install`).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

lint: setup
	$(BIN)/ruff check nas search_spaces api workers tests benchmarks
	$(BIN)/mypy nas search_spaces api workers
	$(BIN)/lint-imports

test: lint browser
	$(BIN)/pytest -q

# schemathesis over every operation at a large count (the suite runs the same test at 8 examples each)
fuzz: setup
	NAS_FUZZ_EXAMPLES=50 $(BIN)/pytest -q -s tests/api/test_openapi_conformance.py

bench: setup
	$(BIN)/python benchmarks/supernet_overhead.py
	$(BIN)/python benchmarks/search_quality.py
	$(BIN)/python benchmarks/two_line.py --workdir runs/bench-seqtask-extremes-auto  # a fresh folder: it is timed
	$(BIN)/python benchmarks/search_quality.py --dataset seqtask --screen 10
	$(BIN)/python benchmarks/ranking.py
	@command -v hey >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq hey >/dev/null)
	$(BIN)/python benchmarks/api_load.py
	$(BIN)/python benchmarks/latency_predict.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/latency_accuracy.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-output
