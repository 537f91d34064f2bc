# Two commands, each doing its own set-up in a git-ignored virtual
# environment (.venv) that is created once and reused:
#   make demo   train SCRIM on a generated CUB-style demo set, test it
#   make test   run the whole test suite (lint included)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DATA := data/demo_cub
DEMO_WORK := work_dirs/demo

.PHONY: demo test venv clean

venv: $(STAMP)

$(STAMP): requirements/ci.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements/ci.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/misc/make_demo_dataset.py --layout cub --out $(DEMO_DATA)
	$(PY) tools/train.py configs/scrim/scrim_r18_demo.py --work-dir $(DEMO_WORK)
	$(PY) tools/test.py configs/scrim/scrim_r18_demo.py $$(cat $(DEMO_WORK)/last_checkpoint) --work-dir $(DEMO_WORK)
	@echo "See what the model sees, in a browser: $(PY) tools/demo/app.py configs/scrim/scrim_r18_demo.py $$(cat $(DEMO_WORK)/last_checkpoint) --device cpu"

test: $(STAMP)
	$(PY) -m ruff check . && $(PY) -m ruff format --check . && $(PY) -m pytest tests

clean:
	rm -rf $(DEMO_WORK) $(DEMO_DATA)
