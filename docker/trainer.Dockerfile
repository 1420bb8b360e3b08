# meshcast's trainer: PyTorch and the whole command line ('.[train,serve]': synth, train, eval,
# export, and the bundle's parity checks on onnxruntime), for a GPU machine or the CPU.
# Built from the repository root:  docker build -f docker/trainer.Dockerfile -t meshcast-trainer .
# Run with the work folders mounted (docker/README.md), e.g.
#   docker run --rm --gpus all --user "$(id -u):$(id -g)" -e HOME=/tmp \
#     -v "$PWD/data:/workspace/data" -v "$PWD/runs:/workspace/runs" \
#     -v "$PWD/bundles:/workspace/bundles" meshcast-trainer train spsnet_cpu --device cuda
#
# No CUDA base image: torch's wheels on PyPI bring their own CUDA and cuDNN libraries (nvidia-*
# wheels, CUDA 13 for the torch of constraints.txt, so a driver >= 580), and a second CUDA from
# the base would only add gigabytes. The host's driver comes in through the NVIDIA Container
# Toolkit (--gpus, or a Kubernetes GPU request).

FROM python:3.11-slim-bookworm AS build
RUN python -m venv /opt/venv
# pip by its name, so that hadolint recognises it and checks its options.
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md NOTICE constraints.txt ./
COPY meshcast meshcast
COPY service service
COPY training training
COPY export export
# torch's version is the project's (constraints.txt).
RUN pip install --no-cache-dir --disable-pip-version-check \
    -c constraints.txt "/src[train,serve]"

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="meshcast-trainer" \
      org.opencontainers.image.description="meshcast's training, evaluation and export" \
      org.opencontainers.image.licenses="Apache-2.0"
# A home of its own (not /tmp as in the service's images): PyTorch and Triton keep caches
# there, and a training's container is not read-only.
RUN groupadd --gid 10001 meshcast \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/meshcast \
       --shell /usr/sbin/nologin meshcast \
    && mkdir -p /workspace/data /workspace/runs /workspace/bundles \
    && chown -R 10001:10001 /workspace
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
# The commands read and write data/, runs/ and bundles/ relative to the working folder.
WORKDIR /workspace
VOLUME ["/workspace/data", "/workspace/runs", "/workspace/bundles"]
USER 10001:10001
# checkov:skip=CKV_DOCKER_2: a training is a batch job that ends by itself, with nothing to probe
ENTRYPOINT ["meshcast"]
CMD ["train", "--help"]
