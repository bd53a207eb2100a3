# The two commands: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch for the 'ml' extra: the version the tests run with, pinned exactly so pip takes a
# CPU-only wheel of it where one is offered (a looser spec may pull a multi-GB CUDA build);
# `make TORCH="torch>=2.2"` lets pip choose, `make TORCH=torch` keeps one already in .venv
TORCH  ?= torch==2.13.0

.PHONY: demo test test-fast bench venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@echo "== installing into $(VENV): pip, then $(TORCH) (a minute from a downloaded wheel, minutes to download), then qpiset and its extras"
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test,bench,ml,stm]"
	@echo "== installed"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/qpiset demo --out demo --overwrite

# everything: the layers contract (import-linter), then every test tier
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

# the inner loop: the contract and the tests not marked slow (under 2 minutes on 2 cores)
test-fast: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) demo .pytest_cache .hypothesis
