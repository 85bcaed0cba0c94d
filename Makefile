# Two entry points (see README): `make train` (set up + main job), `make test` (set up + tests).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# CPU budget of the main job; on a GPU raise it or drop it (--trainer.max_time=null).
TRAIN_TIME ?= 00:00:25:00
TRAIN_ARGS ?= -c conf/lspet.yaml -c conf/model/deeppose.yaml

.PHONY: setup train test lint

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade "pip>=24"
	$(PY) -m pip install -c constraints.txt -e ".[dev]"
	$(PY) -c "import torch, torchvision; torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5); print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	touch $@

setup: $(VENV)/.installed

train: setup
	$(PY) -m lightning_pose fit $(TRAIN_ARGS) --trainer.max_time=$(TRAIN_TIME)

test: setup
	WANDB_MODE=disabled $(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
