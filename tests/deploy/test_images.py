"""The images (every Dockerfile under docker/) and the one-machine deployment (docker/compose.yaml,
docker/compose.gpu.yaml, docker/config.yaml), checked offline, with no container engine: each
Dockerfile linted by hadolint and by checkov, each skipped rule justified where it is skipped;
both compose files valid against the Compose Specification's JSON schema and wired as intended
(images, mounts, hardening, Redis' persistence, the GPU reservation); the settings file loaded by
the service's own loader; and a broken Dockerfile or compose file caught by each of those checks.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import re
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml

from service.settings import load_settings, resolve_api_keys
from tests.support.deploy_tools import (
    ROOT,
    checkov_findings,
    checkov_skips_without_reason,
    compose_schema,
    hadolint_ignores_without_reason,
    run_checkov,
    run_hadolint,
)

DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
COMPOSE_GPU = DOCKER / "compose.gpu.yaml"
CONFIG = DOCKER / "config.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"
UID = "10001:10001"
SERVICE_PORT = 8000
# onnxruntime-gpu's wheels on PyPI are built for CUDA 13 from this release on, for CUDA 12 before.
ORT_CUDA_13 = (1, 27)
# What the build context must never carry: environments, history, data, bundles, API keys.
NOT_IN_CONTEXT = [
    ".venv/bin/python",
    ".venv-deploy/bin/checkov",
    ".git/HEAD",
    "data/synth/train.pt",
    "runs/x/best.pt",
    "bundles/default/manifest.json",
    "docker/api-keys.yaml",
    "tests/conftest.py",
    "meshcast/__pycache__/cli.cpython-311.pyc",
]


def dockerfiles(folder: Path) -> list[Path]:
    """Every Dockerfile under ``folder``, whatever its naming: Dockerfile, NAME.Dockerfile,
    Dockerfile.NAME."""
    return sorted(
        path for path in folder.rglob("*") if path.is_file() and "dockerfile" in path.name.lower()
    )


DOCKERFILES = dockerfiles(DOCKER)


def image(name: str) -> Path:
    return DOCKER / f"{name}.Dockerfile"


# --- reading Dockerfiles ---------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    value: str  # the rest, continuation lines joined
    line: int  # where it starts (1-based)


@dataclass(frozen=True)
class Stage:
    base: str  # an image, or an earlier stage's name
    name: str
    instructions: tuple[Instruction, ...]  # after its FROM


def instructions(text: str) -> list[Instruction]:
    """A Dockerfile's instructions, continuation lines joined, comments dropped (also those
    between continuation lines, as Docker drops them)."""
    found: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        keyword, _, value = " ".join([*pending, line]).partition(" ")
        found.append(Instruction(keyword.upper(), value.strip(), start))
        pending = []
    return found


def stages(path: Path) -> list[Stage]:
    """The build stages of the Dockerfile ``path``, in order (unnamed ones by their index)."""
    result: list[Stage] = []
    for instruction in instructions(path.read_text()):
        if instruction.keyword == "FROM":
            words = instruction.value.split()
            base = next(word for word in words if not word.startswith("--"))
            name = words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else str(len(result))
            result.append(Stage(base, name, ()))
        else:
            last = result[-1]
            result[-1] = Stage(last.base, last.name, (*last.instructions, instruction))
    return result


def image_chain(path: Path, target: str | None = None) -> list[Instruction]:
    """The instructions that make the image of stage ``target`` (default: the last, what
    `docker build` makes), from the stages it is built on through its own."""
    built = stages(path)
    by_name = {stage.name: stage for stage in built}
    stage = by_name[target] if target else built[-1]
    chain = list(stage.instructions)
    while stage.base in by_name:
        stage = by_name[stage.base]
        chain = [*stage.instructions, *chain]
    return chain


def last(chain: list[Instruction], keyword: str) -> str:
    """The value of the last ``keyword`` instruction of ``chain`` ('' when there is none)."""
    values = [instruction.value for instruction in chain if instruction.keyword == keyword]
    return values[-1] if values else ""


def exec_form(value: str) -> list[str]:
    """The argument list of an exec-form instruction (CMD ["a", "b"]), after any --options."""
    return list(yaml.safe_load(value[value.index("[") :]))


def image_env(chain: list[Instruction]) -> dict[str, str]:
    """The environment the ENV instructions of ``chain`` set (KEY=VALUE forms)."""
    found: dict[str, str] = {}
    for instruction in chain:
        if instruction.keyword == "ENV":
            for word in shlex.split(instruction.value):
                key, _, value = word.partition("=")
                found[key] = value
    return found


def pip_installs(chain: list[Instruction]) -> list[list[str]]:
    """The arguments of every `pip install` that a RUN of ``chain`` makes."""
    found = []
    for instruction in chain:
        if instruction.keyword == "RUN":
            for command in re.split(r"&&|;", instruction.value):
                words = shlex.split(command)
                if "pip" in " ".join(words[:1]) and "install" in words:
                    found.append(words[words.index("install") + 1 :])
    return found


def copied_sources(path: Path) -> list[str]:
    """The sources that the COPY instructions of ``path`` take from the build context."""
    sources: list[str] = []
    for stage in stages(path):
        for instruction in stage.instructions:
            words = instruction.value.split()
            if instruction.keyword != "COPY" or any(w.startswith("--from") for w in words):
                continue
            sources += [word for word in words[:-1] if not word.startswith("--")]
    return sources


def docker_ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore's ``patterns`` leave ``path`` (relative to the context) out: the
    last pattern that matches it or a folder above it decides, '!' taking back in."""
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    ignored = False
    for pattern in patterns:
        body = pattern.removeprefix("!").strip("/")
        if any(fnmatch.fnmatchcase(prefix, body) for prefix in prefixes):
            ignored = not pattern.startswith("!")
    return ignored


def dockerignore_patterns() -> list[str]:
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


# --- the Dockerfiles: found, linted ------------------------------------------------------------


def test_every_dockerfile_is_found_whatever_its_name(tmp_path: Path) -> None:
    for name in ("Dockerfile", "api.Dockerfile", "Dockerfile.dev", "nested/Dockerfile"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("FROM scratch\n")
    (tmp_path / ".dockerignore").write_text("*\n")
    assert [path.relative_to(tmp_path).as_posix() for path in dockerfiles(tmp_path)] == [
        "Dockerfile",
        "Dockerfile.dev",
        "api.Dockerfile",
        "nested/Dockerfile",
    ]
    assert {path.name for path in DOCKERFILES} >= {
        "gateway.Dockerfile",
        "worker.Dockerfile",
        "trainer.Dockerfile",
    }


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    """Errors, warnings and even style: each rule set aside is set aside by a pragma."""
    assert run_hadolint(dockerfile) == []


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_every_hadolint_ignore_says_why(dockerfile: Path) -> None:
    assert hadolint_ignores_without_reason(dockerfile) == []


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    return run_checkov([DOCKER], "dockerfile")


def test_checkov_passes_every_dockerfile(checkov_report: dict[str, Any]) -> None:
    assert checkov_findings(checkov_report) == []
    assert checkov_report["results"]["parsing_errors"] == []
    # checkov recognises each file as a Dockerfile (it goes by name): none goes unchecked.
    checked = {
        Path(check["file_abs_path"])
        for kind in ("passed_checks", "skipped_checks")
        for check in checkov_report["results"][kind]
    }
    assert checked == set(DOCKERFILES)


def test_every_checkov_skip_says_why(checkov_report: dict[str, Any]) -> None:
    assert checkov_skips_without_reason(checkov_report) == []


# --- broken Dockerfiles are caught -------------------------------------------------------------


def _edit(name: str, old: str, new: str) -> str:
    text = image(name).read_text()
    assert old in text, f"{name}.Dockerfile no longer holds {old!r}: update this test"
    return text.replace(old, new)


def _drop_line_above(name: str, line_start: str) -> str:
    lines = image(name).read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(line_start))
    return "".join(lines[: index - 1] + lines[index:])


BROKEN: dict[str, Callable[[], str]] = {
    "latest.Dockerfile": lambda: _edit("gateway", "python:3.11-slim-bookworm", "python:latest"),
    "no-user.Dockerfile": lambda: _edit("gateway", f"USER {UID}\n", ""),
    "root.Dockerfile": lambda: _edit("gateway", f"USER {UID}\n", "USER root\n"),
    "no-healthcheck.Dockerfile": lambda: re.sub(
        r"HEALTHCHECK .*?\n(?=\S)", "", image("gateway").read_text(), flags=re.S
    ),
    "pip-cache.Dockerfile": lambda: _edit("gateway", "--no-cache-dir ", ""),
    "apt-unpinned.Dockerfile": lambda: _edit("worker", "# hadolint ignore=DL3008\nRUN", "RUN"),
    "ignore-unexplained.Dockerfile": lambda: _drop_line_above("worker", "# hadolint ignore=DL3022"),
    "skip-unexplained.Dockerfile": lambda: re.sub(
        r"(checkov:skip=CKV_DOCKER_2):.*", r"\1", image("trainer").read_text()
    ),
}


@pytest.fixture(scope="module")
def broken_dockerfiles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("broken")
    for name, make in BROKEN.items():
        (folder / name).write_text(make())
    return folder


@pytest.fixture(scope="module")
def broken_checkov_report(broken_dockerfiles: Path) -> dict[str, Any]:
    return run_checkov([broken_dockerfiles], "dockerfile")


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("latest.Dockerfile", "DL3007"),  # FROM ...:latest
        ("root.Dockerfile", "DL3002"),  # the last USER is root
        ("pip-cache.Dockerfile", "DL3042"),  # pip keeps its cache in the layer
        ("apt-unpinned.Dockerfile", "DL3008"),  # an apt pin dropped without its pragma
    ],
)
def test_hadolint_catches(broken_dockerfiles: Path, name: str, code: str) -> None:
    assert code in {finding["code"] for finding in run_hadolint(broken_dockerfiles / name)}


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("latest.Dockerfile", "CKV_DOCKER_7"),  # the base image's tag is latest
        ("no-user.Dockerfile", "CKV_DOCKER_3"),  # no USER: the process runs as root
        ("root.Dockerfile", "CKV_DOCKER_8"),  # the last USER is root
        ("no-healthcheck.Dockerfile", "CKV_DOCKER_2"),
    ],
)
def test_checkov_catches(
    broken_checkov_report: dict[str, Any], broken_dockerfiles: Path, name: str, check: str
) -> None:
    failed = {
        (Path(found["file_abs_path"]).name, found["check_id"])
        for found in broken_checkov_report["results"]["failed_checks"]
    }
    assert (name, check) in failed


def test_a_skip_or_ignore_without_its_reason_is_caught(
    broken_checkov_report: dict[str, Any], broken_dockerfiles: Path
) -> None:
    unexplained = checkov_skips_without_reason(broken_checkov_report)
    assert [line.split()[0] for line in unexplained] == ["CKV_DOCKER_2"]
    assert unexplained[0].endswith("skip-unexplained.Dockerfile")
    assert hadolint_ignores_without_reason(broken_dockerfiles / "ignore-unexplained.Dockerfile")


def test_a_root_image_is_caught_by_the_uid_check(broken_dockerfiles: Path) -> None:
    for name in ("no-user.Dockerfile", "root.Dockerfile"):
        assert last(image_chain(broken_dockerfiles / name), "USER") != UID


# --- what each image is ----------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_images_run_meshcast_as_a_numeric_non_root_user(dockerfile: Path) -> None:
    """A number, not a name: Kubernetes' runAsNonRoot can only check a number."""
    chain = image_chain(dockerfile)
    assert last(chain, "USER") == UID
    assert exec_form(last(chain, "ENTRYPOINT")) == ["meshcast"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_images_are_built_in_stages_that_leave_the_sources_behind(dockerfile: Path) -> None:
    built = stages(dockerfile)
    assert len(built) >= 2
    final = image_chain(dockerfile)
    assert pip_installs(final) == [], "pip runs in the build stage only"
    assert "COPY --from=build /opt/venv /opt/venv" in {f"COPY {i.value}" for i in final}
    for installed in pip_installs(
        [i for stage in built for i in stage.instructions if stage.name == "build"]
    ):
        assert "--no-cache-dir" in installed


def test_gateway_image() -> None:
    path = image("gateway")
    assert {stage.base for stage in stages(path)} == {"python:3.11-slim-bookworm"}
    chain = image_chain(path)
    (installed,) = pip_installs(image_chain(path, "build"))
    assert "/src[serve]" in installed, "the gateway needs the service, without torch"
    assert not any("train" in word or "gpu" in word or "torch" in word for word in installed)
    assert last(chain, "EXPOSE") == str(SERVICE_PORT)
    assert exec_form(last(chain, "CMD"))[:1] == ["gateway"]
    assert exec_form(last(chain, "CMD"))[-2:] == ["--port", str(SERVICE_PORT)]
    healthcheck = " ".join(exec_form(last(chain, "HEALTHCHECK")))
    assert f"127.0.0.1:{SERVICE_PORT}/healthz" in healthcheck
    assert "curl" not in healthcheck  # not in the slim image
    env = image_env(chain)
    assert env["MESHCAST_CONFIG"].startswith("/etc/meshcast/")
    assert env["MESHCAST_BUNDLE"] == "/bundles"


def test_worker_image_pairs_its_cuda_with_its_onnxruntime() -> None:
    path = image("worker")
    bases = {stage.base for stage in stages(path)} - {stage.name for stage in stages(path)}
    (base,) = bases
    found = re.fullmatch(r"nvidia/cuda:(\d+)\.\d+\.\d+-cudnn-runtime-ubuntu24\.04", base)
    assert found, base
    build = image_chain(path, "build")
    (installed,) = pip_installs(build)
    assert "/src[gpu]" in installed
    pin = re.fullmatch(r"ARG ONNXRUNTIME_GPU=(\d+)\.(\d+)\.\d+", f"ARG {last(build, 'ARG')}")
    assert pin, "onnxruntime-gpu is pinned by the build argument ONNXRUNTIME_GPU"
    assert "onnxruntime-gpu==${ONNXRUNTIME_GPU}" in installed
    ort = (int(pin[1]), int(pin[2]))
    assert (int(found[1]) >= 13) == (ort >= ORT_CUDA_13), f"CUDA {found[1]}, onnxruntime {ort}"


def test_worker_image_runs_with_its_bundle_mounted_or_baked_in() -> None:
    path = image("worker")
    default, bundled = image_chain(path), image_chain(path, "bundled")
    assert exec_form(last(default, "CMD")) == ["worker", "--concurrency", "1"]
    assert exec_form(last(default, "HEALTHCHECK"))[:3] == ["meshcast", "worker", "ping"]
    assert image_env(default)["MESHCAST_BUNDLE"] == "/bundles"
    assert not any("--from=bundle" in i.value for i in default), "the default mounts it"
    assert last(bundled, "COPY") == "--from=bundle . /bundles/"


def test_trainer_image() -> None:
    path = image("trainer")
    chain = image_chain(path)
    (installed,) = pip_installs(image_chain(path, "build"))
    assert installed[installed.index("-c") + 1] == "constraints.txt"  # the project's torch
    assert "/src[train,serve]" in installed
    assert last(chain, "WORKDIR") == "/workspace"
    volumes = set(exec_form(last(chain, "VOLUME")))
    assert {"/workspace/data", "/workspace/runs"} <= volumes
    assert exec_form(last(chain, "CMD")) == ["train", "--help"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_what_the_images_copy_is_in_the_build_context(dockerfile: Path) -> None:
    patterns = dockerignore_patterns()
    for source in copied_sources(dockerfile):
        assert (ROOT / source).exists(), source
        files = [ROOT / source] if (ROOT / source).is_file() else (ROOT / source).rglob("*.py")
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if "__pycache__" not in relative:
                assert not docker_ignored(relative, patterns), relative


@pytest.mark.parametrize("path", NOT_IN_CONTEXT)
def test_the_build_context_leaves_out(path: str) -> None:
    assert docker_ignored(path, dockerignore_patterns())


# --- compose -----------------------------------------------------------------------------------


def load_yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def compose_gpu() -> dict[str, Any]:
    return load_yaml(COMPOSE_GPU)


@pytest.fixture(scope="module")
def settings_file() -> dict[str, Any]:
    return load_yaml(CONFIG)


@pytest.fixture(scope="module")
def schema() -> jsonschema.Draft7Validator:
    """The Compose Specification (draft-07, as its $schema says without draft-07's '#')."""
    return jsonschema.Draft7Validator(compose_schema())


def schema_errors(validator: jsonschema.Draft7Validator, document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_GPU], ids=lambda path: path.name)
def test_compose_files_follow_the_compose_specification(
    schema: jsonschema.Draft7Validator, path: Path
) -> None:
    assert schema.schema["title"] == "Compose Specification"
    assert schema_errors(schema, load_yaml(path)) == []


def test_the_schema_catches_a_malformed_compose_file(
    schema: jsonschema.Draft7Validator, compose: dict[str, Any], compose_gpu: dict[str, Any]
) -> None:
    gpu = copy.deepcopy(compose_gpu)
    device = gpu["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    device["capability"] = device.pop("capabilities")  # a misspelt key
    assert any("capability" in error for error in schema_errors(schema, gpu))
    base = copy.deepcopy(compose)
    base["services"]["gateway"]["depends_on"]["redis"]["condition"] = "service_ready"
    assert any("service_ready" in error for error in schema_errors(schema, base))


def mounts(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A service's bind mounts (long syntax) by target."""
    return {m["target"]: m for m in service.get("volumes", []) if isinstance(m, dict)}


def compose_problems(
    compose: dict[str, Any], compose_gpu: dict[str, Any], settings: dict[str, Any]
) -> list[str]:
    """What is wrong with the compose deployment, against what the images and the settings
    expect; nothing when it is as intended."""
    problems: list[str] = []
    services = compose["services"]
    if set(services) != {"redis", "gateway", "worker"}:
        return [f"services: {sorted(services)}"]
    for name, service in services.items():
        if "build" in service:
            dockerfile = (
                COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]
            )
            if not dockerfile.resolve().is_file():
                problems.append(f"{name}: its Dockerfile {dockerfile} is missing")
        if ":" not in service.get("image", "") or service["image"].endswith(":latest"):
            problems.append(f"{name}: image {service.get('image')!r} has no tag of its own")
        if service.get("read_only") is not True:
            problems.append(f"{name}: read_only is not set")
        if service.get("cap_drop") != ["ALL"]:
            problems.append(f"{name}: capabilities are kept")
        if "no-new-privileges:true" not in service.get("security_opt", []):
            problems.append(f"{name}: no-new-privileges is not set")
        if not any(entry.split(":")[0] == "/tmp" for entry in service.get("tmpfs", [])):
            problems.append(f"{name}: /tmp is not a tmpfs")
        if service.get("restart") not in ("always", "unless-stopped"):
            problems.append(f"{name}: not restarted")
        if not service.get("healthcheck", {}).get("test"):
            problems.append(f"{name}: no health check")

    redis = services["redis"]
    command = redis.get("command", [])
    if ["--appendonly", "yes"] not in [command[i : i + 2] for i in range(len(command))]:
        problems.append("redis: the append-only file is off: queued jobs die with it")
    volume = next((v for v in redis.get("volumes", []) if str(v).endswith(":/data")), "")
    if volume.split(":")[0] not in compose.get("volumes", {}):
        problems.append("redis: /data is not a named volume")
    if "ports" in redis:
        problems.append("redis publishes a port")
    internal = {name for name, net in compose["networks"].items() if (net or {}).get("internal")}
    if not set(redis.get("networks", [])) <= internal:
        problems.append("redis: on a network with a way out")

    redis_host = re.fullmatch(r"redis://([^:/]+):6379/\d+", settings["redis_url"])
    if not redis_host or redis_host[1] not in services:
        problems.append(f"settings: redis_url {settings['redis_url']} is no service here")
    secret_file = settings["gateway"]["api_keys_file"]
    for name in ("gateway", "worker"):
        service = services[name]
        env = image_env(image_chain(image(name)))
        if service.get("depends_on", {}).get("redis", {}).get("condition") != "service_healthy":
            problems.append(f"{name}: starts before Redis is healthy")
        config = mounts(service).get(env["MESHCAST_CONFIG"], {})
        if (COMPOSE.parent / config.get("source", "-")).resolve() != CONFIG:
            problems.append(f"{name}: docker/config.yaml is not at MESHCAST_CONFIG")
        bundle = mounts(service).get(settings["bundle"], {})
        if (COMPOSE.parent / bundle.get("source", "-")).resolve() != ROOT / "bundles" / "default":
            problems.append(f"{name}: bundles/default is not mounted at the settings' bundle")
        if env["MESHCAST_BUNDLE"] != settings["bundle"]:
            problems.append(f"{name}: the image's MESHCAST_BUNDLE is not the settings' bundle")
        for mount in (config, bundle):
            if mount and not mount.get("read_only"):
                problems.append(f"{name}: {mount['target']} is not read-only")

    gateway = services["gateway"]
    if secret_file not in [secret.get("target") for secret in gateway.get("secrets", [])]:
        problems.append(f"gateway: no API keys file at {secret_file}")
    if [str(port).rsplit(":", 1)[-1] for port in gateway.get("ports", [])] != ["8000"]:
        problems.append("gateway: port 8000 is not published")
    if settings["gateway"]["port"] != SERVICE_PORT:
        problems.append("settings: gateway.port is not the image's")
    worker = services["worker"]
    if worker.get("environment", {}).get("MESHCAST_DEVICE") != "cpu":
        problems.append("worker: not on the CPU by default")
    if worker.get("command") != ["worker", "--concurrency", "1"]:
        problems.append("worker: not one job at a time")
    if worker.get("secrets"):
        problems.append("worker: given secrets it never reads")

    if not set(compose_gpu["services"]) <= set(services):
        problems.append("compose.gpu.yaml: a service compose.yaml lacks")
    gpu_worker = compose_gpu["services"].get("worker", {})
    if gpu_worker.get("environment", {}).get("MESHCAST_DEVICE") != "cuda":
        problems.append("compose.gpu.yaml: the worker is not told to use CUDA")
    devices = (
        gpu_worker.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices")
    )
    if not (
        isinstance(devices, list)
        and len(devices) == 1
        and devices[0].get("driver") == "nvidia"
        and "gpu" in devices[0].get("capabilities", [])
        and (devices[0].get("count") == 1 or len(devices[0].get("device_ids", [])) == 1)
    ):
        problems.append(f"compose.gpu.yaml: the worker does not reserve one NVIDIA GPU: {devices}")
    return problems


def test_compose_deployment_is_wired_as_intended(
    compose: dict[str, Any], compose_gpu: dict[str, Any], settings_file: dict[str, Any]
) -> None:
    assert compose_problems(compose, compose_gpu, settings_file) == []


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, key = path.split("/")
    target: Any = document
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is None:
        del target[key]
    else:
        target[key] = value


GPU_DEVICE = "services/worker/deploy/resources/reservations/devices/0"


@pytest.mark.parametrize(
    ("file", "path", "value", "problem"),
    [
        ("compose", "services/redis/command", ["redis-server"], "append-only"),
        ("compose", "services/redis/ports", ["6379:6379"], "redis publishes"),
        ("compose", "services/gateway/read_only", False, "gateway: read_only"),
        ("compose", "services/worker/cap_drop", None, "worker: capabilities"),
        ("compose", "services/worker/build/dockerfile", "docker/gone.Dockerfile", "missing"),
        ("compose", "services/worker/volumes/1/read_only", False, "/bundles is not read-only"),
        ("compose", "services/gateway/depends_on", None, "before Redis is healthy"),
        ("compose", "services/gateway/secrets", None, "no API keys file"),
        ("compose", "services/worker/secrets", ["api-keys"], "secrets it never reads"),
        ("compose", "services/worker/environment", None, "not on the CPU"),
        ("gpu", f"{GPU_DEVICE}/capabilities", ["compute"], "one NVIDIA GPU"),
        ("gpu", f"{GPU_DEVICE}/count", "all", "one NVIDIA GPU"),
        ("settings", "bundle", "/models", "bundle"),
        ("settings", "redis_url", "redis://127.0.0.1:6379/0", "redis_url"),
    ],
)
def test_a_miswired_compose_deployment_is_caught(
    compose: dict[str, Any],
    compose_gpu: dict[str, Any],
    settings_file: dict[str, Any],
    file: str,
    path: str,
    value: Any,
    problem: str,
) -> None:
    documents = copy.deepcopy({"compose": compose, "gpu": compose_gpu, "settings": settings_file})
    _set(documents[file], path, value)
    problems = compose_problems(documents["compose"], documents["gpu"], documents["settings"])
    assert any(problem in found for found in problems), problems


# --- the settings file -------------------------------------------------------------------------


def test_compose_settings_load_through_the_service_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings_file: dict[str, Any]
) -> None:
    """docker/config.yaml as the containers read it, the API keys file at a path of this
    machine instead of the secret's mount point."""
    for variable in ("MESHCAST_CONFIG", "MESHCAST_REDIS_URL", "MESHCAST_BUNDLE", "MESHCAST_DEVICE"):
        monkeypatch.delenv(variable, raising=False)
    key = {"id": "team-a", "sha256": hashlib.sha256(b"a key").hexdigest()}
    keys_file = tmp_path / "api-keys.yaml"
    keys_file.write_text(yaml.safe_dump([key]))
    settings_copy = copy.deepcopy(settings_file)
    settings_copy["gateway"]["api_keys_file"] = str(keys_file)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings_copy))

    settings = load_settings(config)
    assert settings.gateway.api_keys == []  # the file is the gateway's, read as it starts
    settings = resolve_api_keys(settings)
    assert settings.gateway.host == "0.0.0.0"
    assert settings.gateway.port == SERVICE_PORT
    assert settings.bundle == Path("/bundles")
    assert [k.model_dump() for k in settings.gateway.api_keys] == [key]
    assert settings.worker.device == "auto"  # the compose files choose it per worker


def test_the_offline_build_script_parses() -> None:
    """docker/build-offline.sh (`make image-gateway`) needs root, buildah and minutes: here
    only bash's syntax check."""
    script = DOCKER / "build-offline.sh"
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
