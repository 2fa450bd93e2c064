# lsdense: two commands do all set-up (see README).
#   make demo   the quickstart (installs first)
#   make test   the test suite without its slow tier (installs first; under 12 min of pytest)
#   make test-slow   the slow tier (-m slow: real-data overfits, full-depth exports, timm's suite)
#   make test-real   every real-data test (../shared/realdata), the slow overfit runs included
#   make gpu-check OFFICIAL=../lsnet   tools/gpu_check.py: the GPU report (docs/gpu.md)
PY := .venv/bin/python
export PYTHONUNBUFFERED := 1

.PHONY: install test test-slow test-real demo demo-mm demo-yolo benchmark gpu-check clean

install:
	bash scripts/install.sh

test: install
	$(PY) -m pytest -q tests

test-slow: install
	$(PY) -m pytest -q -m slow tests

test-real: install
	$(PY) -m pytest -q -m "" tests/test_real_*.py

demo: install
	$(PY) tools/demo.py

demo-mm: install
	$(PY) tools/demo.py --only mm

demo-yolo: install
	$(PY) tools/demo.py --only yolo

gpu-check: install
	$(PY) tools/gpu_check.py $(if $(OFFICIAL),--official $(OFFICIAL))

benchmark: install
	$(PY) tools/benchmark.py --models all --sizes 224 640 --fused both --markdown docs/benchmarks_table.md

clean:
	rm -rf .venv work_dirs runs
