# meshcast's gateway: the HTTP API (FastAPI on uvicorn), on the CPU, without torch.
# Built from the repository root:  docker build -f docker/gateway.Dockerfile -t meshcast-gateway .
# It reads its settings from $MESHCAST_CONFIG (mounted: docker/compose.yaml, the Helm chart) and
# the model bundle from $MESHCAST_BUNDLE (its body.onnx poses the meshes it serves).

# The virtual environment is made here, so pip, setuptools and the sources stay behind. Every
# dependency of '.[serve]' has a manylinux wheel: no compiler is needed.
FROM python:3.11-slim-bookworm AS build
RUN python -m venv /opt/venv
# pip by its name, so that hadolint recognises it and checks its options.
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md NOTICE ./
COPY meshcast meshcast
COPY service service
COPY training training
COPY export export
RUN pip install --no-cache-dir --disable-pip-version-check "/src[serve]"

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="meshcast-gateway" \
      org.opencontainers.image.description="meshcast's HTTP API: videos in, SMPL bodies out" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric uid (not a name): Kubernetes' runAsNonRoot can only verify a number. Its home
# is /tmp, the one writable place when the root filesystem is read-only.
RUN groupadd --gid 10001 meshcast \
    && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin meshcast
COPY --from=build /opt/venv /opt/venv
# The bytecode was compiled by pip at install time; nothing is written at run time but /tmp.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MESHCAST_CONFIG=/etc/meshcast/config/config.yaml \
    MESHCAST_BUNDLE=/bundles
USER 10001:10001
EXPOSE 8000
# No curl in the slim image: Python asks /healthz (the process is alive; /readyz also wants
# Redis and a worker, which is the orchestrator's business, not the container's health).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", \
         "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["meshcast"]
# The address and port are fixed here, whatever the settings say, so that EXPOSE, the health
# check and the published port agree.
CMD ["gateway", "--host", "0.0.0.0", "--port", "8000"]
