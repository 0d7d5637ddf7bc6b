# One-command set-up and the common jobs. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Test workers: pytest-xdist processes (CI machines have 2 cores).
WORKERS ?= 2
# The compile stacks (libtpu, XLA GPU + Triton + ptxas) for compiling on a
# CPU host for TPUs and the H100 (sg3jax/aot.py), at the main venv's jax
# version, apart from the user's install. Compiling needs no CUDA runtime
# libraries, so the GPU plugin comes without its `with-cuda` wheels (cuDNN,
# cuBLAS, NCCL, ...): 2.5 GB instead of 6.8 GB, and no pip cache beside it.
AOT_VENV ?= .venv-aot

.PHONY: help setup aot-setup demo operator-demo sweep test test-slow compile-check plan-table bench lint clean

help:
	@echo "make demo       set up, train the CPU quickstart (out/quickstart) and write images"
	@echo "make operator-demo  the filtered-lrelu figure (out/demo/)"
	@echo "make sweep      the filter-design ablation sweep (out/sweep; about an hour on 2 CPU cores)"
	@echo "make test       set up, then run the test suite (what CI runs)"
	@echo "make test-slow  run only the tests marked slow"
	@echo "make compile-check  compile every official filtered_lrelu layer for TPU v4/v5e/v5p/v6e and H100 (out/compile_check.json)"
	@echo "make plan-table sg3jax plan of the official configs on v5e:2x4, v4, v6e, H100 (out/plan_table.md/.json; hours)"
	@echo "make bench      time filtered_lrelu and G at StyleGAN3 shapes"
	@echo "make lint       ruff (pyflakes rules)"

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

aot-setup: $(AOT_VENV)/.installed

$(AOT_VENV)/.installed: $(VENV)/.installed
	$(PYTHON) -m venv $(AOT_VENV)
	$(AOT_VENV)/bin/python -m pip install --quiet --upgrade pip
	version=$$($(PY) -c 'import jax; print(jax.__version__)') && \
	  $(AOT_VENV)/bin/python -m pip install --quiet --no-cache-dir \
	  "jax[tpu]==$$version" "jax-cuda12-plugin==$$version" \
	  "nvidia-cuda-nvcc-cu12>=12.6.85" -e .
	touch $@

demo: setup
	$(VENV)/bin/sg3jax train --config=experiments/quickstart.py --workdir=out/quickstart
	$(VENV)/bin/sg3jax generate --network=out/quickstart --seeds=0-15 --outdir=out/quickstart/images

operator-demo: setup
	$(VENV)/bin/sg3jax demo --outdir out/demo

sweep: setup
	$(VENV)/bin/sg3jax sweep --config=experiments/filter_sweep.py --workdir=out/sweep

test: setup aot-setup
	$(PY) -m pytest -n $(WORKERS) --dist loadscope --durations=15 tests

test-slow: setup
	$(PY) -m pytest -n $(WORKERS) --dist loadscope -m slow tests

compile-check: setup aot-setup
	$(PY) experiments/compile_check.py --out=out/compile_check.json

plan-table: setup aot-setup
	$(PY) experiments/plan_table.py --out=out/plan_table

bench: setup
	$(PY) experiments/bench_filtered_lrelu.py
	$(PY) experiments/bench_generator.py
	$(PY) experiments/bench_training.py

lint: setup
	$(PY) -m ruff check --select F --per-file-ignores '__init__.py:F401' sg3jax kernels experiments tests

clean:
	rm -rf $(VENV) $(AOT_VENV) out build *.egg-info
