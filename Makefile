# One-command set-up and the common jobs. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Test workers: pytest-xdist processes (CI machines have 2 cores).
WORKERS ?= 2

.PHONY: help setup demo operator-demo sweep test test-slow bench lint clean

help:
	@echo "make demo       set up, train the CPU quickstart (out/quickstart) and write images"
	@echo "make operator-demo  the filtered-lrelu figure (out/demo/)"
	@echo "make sweep      the filter-design ablation sweep (out/sweep; about an hour on 2 CPU cores)"
	@echo "make test       set up, then run the test suite (what CI runs)"
	@echo "make test-slow  run only the tests marked slow"
	@echo "make bench      time filtered_lrelu and G at StyleGAN3 shapes"
	@echo "make lint       ruff (pyflakes rules)"

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: setup
	$(VENV)/bin/sg3jax train --config=experiments/quickstart.py --workdir=out/quickstart
	$(VENV)/bin/sg3jax generate --network=out/quickstart --seeds=0-15 --outdir=out/quickstart/images

operator-demo: setup
	$(VENV)/bin/sg3jax demo --outdir out/demo

sweep: setup
	$(VENV)/bin/sg3jax sweep --config=experiments/filter_sweep.py --workdir=out/sweep

test: setup
	$(PY) -m pytest -n $(WORKERS) --dist loadscope tests

test-slow: setup
	$(PY) -m pytest -n $(WORKERS) --dist loadscope -m slow tests

bench: setup
	$(PY) experiments/bench_filtered_lrelu.py
	$(PY) experiments/bench_generator.py
	$(PY) experiments/bench_training.py

lint: setup
	$(PY) -m ruff check --select F --per-file-ignores '__init__.py:F401' sg3jax kernels experiments tests

clean:
	rm -rf $(VENV) out build *.egg-info
