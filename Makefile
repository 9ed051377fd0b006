# `make run` starts the bot, `make test` runs every test; both set everything up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run chat test lint bench bench-webhook eval clean

setup: $(VENV)/.installed
	$(BIN)/articlebot setup

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: it is the CPU wheel; anything else pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: setup
	$(BIN)/articlebot run

chat: setup
	$(BIN)/articlebot chat

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/bench.py

bench-webhook: setup
	$(BIN)/python bench/webhook_throughput.py

eval: setup
	$(BIN)/articlebot eval ../shared/eval/xquad --split dev

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
