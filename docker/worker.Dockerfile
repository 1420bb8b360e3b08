# meshcast's worker: a Celery worker that runs the jobs (decode, track, the bundle's networks on
# onnxruntime) on an NVIDIA GPU, or on the CPU with MESHCAST_DEVICE=cpu (onnxruntime-gpu carries
# the CPU provider too).
# Built from the repository root:
#   docker build -f docker/worker.Dockerfile -t meshcast-worker .
# The bundle is mounted at /bundles (MESHCAST_BUNDLE), or baked in by the 'bundled' target:
#   docker build -f docker/worker.Dockerfile --target bundled \
#     --build-context bundle=bundles/default -t meshcast-worker:bundled .
#
# CUDA 12 with cuDNN 9: onnxruntime-gpu 1.26 is the last release on PyPI built for them (1.27
# and later want CUDA 13, hence a driver >= 580); CUDA 12 runs on drivers >= 525 (minor version
# compatibility). For CUDA 13: FROM nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04 below, and
# --build-arg ONNXRUNTIME_GPU=1.31.1 (or newer).

# Python from Ubuntu 24.04 (3.12; the project wants >= 3.11), and the user, shared by the stages
# below so that the virtual environment made in 'build' runs unchanged in 'runtime'.
FROM nvidia/cuda:12.9.1-cudnn-runtime-ubuntu24.04 AS base
# Unpinned apt packages: the base image is pinned by its tag, and Ubuntu removes superseded
# versions from its archive, so pins would break the build at the next security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# Ubuntu's image has a user 'ubuntu' at uid 1000; meshcast's is 10001, numeric for runAsNonRoot.
RUN groupadd --gid 10001 meshcast \
    && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin meshcast

FROM base AS build
# The reason above (DL3008) holds for python3-venv too.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
# pip by its name, so that hadolint recognises it and checks its options.
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md NOTICE ./
COPY meshcast meshcast
COPY service service
COPY training training
COPY export export
# The pin keeps pip from taking the newest onnxruntime-gpu, built for another CUDA than the base.
ARG ONNXRUNTIME_GPU=1.26.0
RUN pip install --no-cache-dir --disable-pip-version-check \
    "/src[gpu]" "onnxruntime-gpu==${ONNXRUNTIME_GPU}"

FROM base AS runtime
LABEL org.opencontainers.image.title="meshcast-worker" \
      org.opencontainers.image.description="meshcast's worker: SMPL bodies from videos" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/venv /opt/venv
# NVIDIA_* come from the CUDA image (compute, utility); the rest is read by meshcast.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MESHCAST_CONFIG=/etc/meshcast/config/config.yaml \
    MESHCAST_BUNDLE=/bundles
USER 10001:10001
# Alive means this container's Celery node answers a ping through Redis; the worker loads its
# bundle and onnxruntime sessions before it answers, hence the long start period.
HEALTHCHECK --interval=60s --timeout=30s --start-period=120s --retries=3 \
    CMD ["meshcast", "worker", "ping", "--timeout", "10"]
ENTRYPOINT ["meshcast"]
# One job at a time: one worker (container) per GPU.
CMD ["worker", "--concurrency", "1"]

# The runtime with the bundle inside, from the build context named 'bundle' (see the top).
FROM runtime AS bundled
# 'bundle' is a build context given on the command line (--build-context), not a stage.
# hadolint ignore=DL3022
COPY --from=bundle . /bundles/

# The default target: the runtime, the bundle mounted.
FROM runtime AS worker
