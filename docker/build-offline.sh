#!/usr/bin/env bash
# Builds the gateway's image with no container daemon and no registry, then runs the image's own
# HEALTHCHECK inside it against the gateway it starts: `make image-gateway`.
#
# - buildah builds docker/gateway.Dockerfile with chroot isolation (no daemon, no runtime).
# - Its base image (the Dockerfile's FROM, python:3.11-slim-bookworm) cannot be pulled here, so a
#   stand-in is made under the same name: Debian bookworm (the real image's distribution) with
#   Debian's Python 3.11, by mmdebstrap, imported by podman. It proves that the Dockerfile builds
#   and that the image runs; an image to ship is built from the real base with `docker build`.
# - pip, in the build stage, reaches the package index with the host's CA bundle.
# - The gateway runs as the image would run it (its ENTRYPOINT and CMD, its user), with
#   docker/config.yaml, an empty API keys file and the bundle mounted as compose mounts them, on
#   the host's network (chroot isolation has no network of its own), so port 8000 must be free.
#
# Environment: IMAGE (meshcast-gateway:local), BUNDLE (bundles/default, which `make demo`
# builds), CA_BUNDLE (/etc/ssl/certs/ca-certificates.crt), HEALTH_TIMEOUT_S (60, the image's
# start period), STORAGE_DRIVER (vfs: overlay mounts are not always allowed in a container).
# Run as root (buildah and mmdebstrap need it); missing tools are installed with apt-get.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCKERFILE="$ROOT/docker/gateway.Dockerfile"
IMAGE=${IMAGE:-meshcast-gateway:local}
BUNDLE=$(realpath -m "${BUNDLE:-$ROOT/bundles/default}")
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
HEALTH_TIMEOUT_S=${HEALTH_TIMEOUT_S:-60}
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
PORT=8000  # what the image's CMD and HEALTHCHECK use

say() { echo "build-offline: $*" >&2; }
fail() { say "$*"; exit 1; }

[[ -f "$BUNDLE/manifest.json" ]] || fail "no bundle at $BUNDLE: run 'make demo', or set BUNDLE"
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    fail "port $PORT is taken: the health check would ask another server"
fi

# The tools, from Debian's packages.
missing=()
for tool in buildah mmdebstrap podman; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
fi

WORK=$(mktemp -d)
CONTAINER=""
GATEWAY_PID=""
# shellcheck disable=SC2317  # called by the EXIT trap, which shellcheck does not follow
cleanup() {
    if [[ -n "$GATEWAY_PID" ]]; then
        kill -- "-$GATEWAY_PID" 2>/dev/null || true  # its process group: buildah and the gateway
        wait "$GATEWAY_PID" 2>/dev/null || true
    fi
    if [[ -n "$CONTAINER" ]]; then
        buildah rm "$CONTAINER" >/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# The base, under the name the Dockerfile's first FROM gives (made once, then kept in buildah's
# storage). A short name is Docker Hub's official image.
BASE=$(awk 'toupper($1) == "FROM" { print $2; exit }' "$DOCKERFILE")
[[ "$BASE" == */* ]] || BASE="docker.io/library/$BASE"
if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
    say "making the stand-in for $BASE with mmdebstrap"
    mmdebstrap --variant=minbase --format=tar \
        --include=python3,python3-venv,python-is-python3,ca-certificates \
        bookworm "$WORK/base.tar" http://deb.debian.org/debian
    podman import "$WORK/base.tar" "$BASE" >/dev/null
fi

say "building $IMAGE"
# --format docker: OCI image configs have no HEALTHCHECK.
buildah bud --isolation chroot --pull-never --format docker \
    --volume "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro" \
    --file "$DOCKERFILE" --tag "$IMAGE" "$ROOT"

# The image's ENTRYPOINT + CMD and HEALTHCHECK, as JSON argument lists.
CONFIG=$(buildah inspect --type image "$IMAGE")
read_config() {
    python3 -c "import json, sys; c = json.load(sys.stdin)['Docker']['config']; $1" <<<"$CONFIG"
}
mapfile -t RUN_ARGS < <(read_config 'print(*c["Entrypoint"] + c["Cmd"], sep="\n")')
mapfile -t CHECK < <(read_config '
test = c["Healthcheck"]["Test"]
print(*(test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]), sep="\n")')
USER_ID=$(read_config 'print(c["User"])')
[[ "$USER_ID" != "" && "$USER_ID" != root && "$USER_ID" != 0* ]] || fail "the image runs as root"

echo "[]" >"$WORK/api-keys.yaml"
CONTAINER=$(buildah from --pull-never "$IMAGE")
say "starting ${RUN_ARGS[*]} as $USER_ID"
# Its own process group (setsid), so that cleanup ends the gateway with buildah.
setsid buildah run --isolation chroot \
    --volume "$ROOT/docker/config.yaml:/etc/meshcast/config/config.yaml:ro" \
    --volume "$WORK/api-keys.yaml:/etc/meshcast/api-keys/api-keys.yaml:ro" \
    --volume "$BUNDLE:/bundles:ro" \
    "$CONTAINER" -- "${RUN_ARGS[@]}" >"$WORK/gateway.log" 2>&1 &
GATEWAY_PID=$!

say "health check: ${CHECK[*]}"
for ((waited = 0; waited < HEALTH_TIMEOUT_S; waited++)); do
    if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
        cat "$WORK/gateway.log" >&2
        fail "the gateway stopped"
    fi
    if buildah run --isolation chroot "$CONTAINER" -- "${CHECK[@]}" 2>/dev/null; then
        say "$IMAGE is healthy ${waited} s after its start"
        exit 0
    fi
    sleep 1
done
cat "$WORK/gateway.log" >&2
fail "$IMAGE was not healthy within ${HEALTH_TIMEOUT_S} s"
