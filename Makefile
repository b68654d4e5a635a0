# Set-up, demo and tests on a fresh machine. Each target builds .venv once (idempotent):
# torch first, pinned (an unpinned torch pulls a multi-GB CUDA build), then the package.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Point the data cache at the reference files beside the repo when they are there.
ifneq ($(wildcard ../shared/data/ETTh1.csv),)
export HDT_DATA_DIR ?= $(abspath ../shared/data)
endif

.PHONY: demo distill-demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,bench,finetune,lora,moirai]'
	# uni2ts and gluonts pin an old torch/numpy/pandas: install them without their pins.
	$(BIN)/python -m pip install --quiet --no-deps uni2ts==2.0.0 gluonts==0.17.0
	touch $@

# The main job: HDT-distil ETTh1 (cached after the first run), fine-tune Moirai-small on it
# with Accelerate, test on the real test split. Offline there are no published weights, so
# the demo says model.init=random explicitly (labelled in every output); with a downloaded
# Moirai folder use: make demo MODEL=model.source=/path/to/moirai-1.1-R-small
MODEL ?= model.init=random
demo: $(STAMP)
	$(BIN)/accelerate launch --config_file accelerate_config.yaml recipes/moirai_etth.py $(MODEL)

distill-demo: $(STAMP)
	$(BIN)/python recipes/etth1_distill_evaluate.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs
