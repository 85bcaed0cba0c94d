# Two entry points (see README): `make train` (set up + main job), `make test` (set up + tests).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# The main job (`lightning-pose budget`, lightning_pose/cli/budget.py): fit the best CPU recipe
# (conf/model/heatmap_budget.yaml) for TRAIN_BUDGET_MIN minutes of wall time, then validate and
# predict overlays. Its steps and cosine schedule follow the budget on any machine (CPU or
# GPU): measured after the warm-up and the first validation, re-planned when the machine's
# speed changes, the learning rate at its floor when the budget ends
# (lightning_pose/callbacks/budget_schedule.py). TRAIN_STEPS fixes the steps and the schedule
# instead (e.g. make train TRAIN_BUDGET_MIN=240 TRAIN_STEPS=60000).
TRAIN_BUDGET_MIN ?= 60
TRAIN_STEPS ?=

.PHONY: setup train test lint

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade "pip>=24"
	$(PY) -m pip install -c constraints.txt -e ".[dev]"
	$(PY) -c "import torch, torchvision; torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5); print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	touch $@

setup: $(VENV)/.installed

train: setup
	$(PY) -m lightning_pose budget --budget-min $(TRAIN_BUDGET_MIN) $(if $(TRAIN_STEPS),--steps $(TRAIN_STEPS))

# Two pytest-xdist workers on the 2-core machine: 12.9 min quiet (one process took 23 min,
# partly loaded). The one-node SLURM tests share one worker (xdist_group "slurm").
test: setup
	WANDB_MODE=disabled $(PY) -m pytest -q -n 2 --dist loadgroup

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
