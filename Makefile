# Set-up and everyday commands. `make run` and `make test` set everything up on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench clean

setup: $(STAMP)

# torch goes in first, pinned, so that resolving the project's range (torch>=2.3,<3) installs
# nothing more; otherwise pip would pick the newest torch with several GB of CUDA packages.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==$(TORCH_VERSION)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

run: setup
	$(BIN)/nas spaces list
	$(BIN)/nas search configs/default.yaml --out runs/default

lint: setup
	$(BIN)/ruff check nas search_spaces api workers tests benchmarks
	$(BIN)/mypy nas search_spaces

test: lint
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python benchmarks/supernet_overhead.py
	$(BIN)/python benchmarks/search_quality.py
	$(BIN)/python benchmarks/ranking.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
