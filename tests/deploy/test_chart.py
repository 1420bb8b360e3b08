"""The Helm chart (k8s/meshcast), checked offline: linted and rendered by Helm's own library for
Kubernetes 1.30 with the default values and with k8s/values-gpu-production.yaml, every object
valid against Kubernetes' schemas in strict mode, checkov clean, and the objects that matter
(GPU request, security, probes, NetworkPolicies, KEDA, PDB, HPA, resources) as intended; and a
broken chart is caught by each of those checks.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

import helm_python
import jsonschema
import pydantic
import pytest
import yaml

from service.queue import QUEUE, broker_prefix
from service.settings import ServiceSettings, read_api_keys
from tests.support.chart import (
    CHART_DIR,
    KEDA_REDIS_METADATA,
    NAMESPACE,
    PRODUCTION_VALUES,
    Manifest,
    containers,
    env,
    find,
    lint_errors,
    load_values,
    manifests,
    one,
    pod_specs,
    render,
    selects,
    validate,
    write_manifests,
)
from tests.support.deploy_tools import checkov_skips_without_reason, run_checkov
from training.recipes import deep_merged

# As k8s/README.md installs it: the Redis password is given at install, never committed.
PRODUCTION_INSTALL = {"redis": {"auth": {"password": "s3cret-from-the-command-line"}}}
API_KEY = {"id": "team-a", "sha256": hashlib.sha256(b"a key").hexdigest()}
RUNTIME_DEFAULT = {"type": "RuntimeDefault"}
UID = 10001


@pytest.fixture(scope="module")
def production_values() -> dict[str, Any]:
    return deep_merged(load_values(PRODUCTION_VALUES), PRODUCTION_INSTALL)


@pytest.fixture(scope="module")
def default_objects() -> list[Manifest]:
    return manifests(render())


@pytest.fixture(scope="module")
def production_objects(production_values: dict[str, Any]) -> list[Manifest]:
    return manifests(render(production_values))


@pytest.fixture(scope="module", params=["default", "production"])
def objects(
    request: pytest.FixtureRequest,
    default_objects: list[Manifest],
    production_objects: list[Manifest],
) -> list[Manifest]:
    """Each rendering in turn."""
    return default_objects if request.param == "default" else production_objects


def weakened_chart(tmp: Path) -> Path:
    """A copy of the chart whose containers may escalate privileges and write their root
    filesystem: what checkov must catch."""
    chart = tmp / "meshcast"
    shutil.copytree(CHART_DIR, chart)
    helpers = chart / "templates" / "_helpers.tpl"
    text = helpers.read_text()
    for field in ("allowPrivilegeEscalation: false", "readOnlyRootFilesystem: true"):
        assert field in text
    helpers.write_text(
        text.replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true").replace(
            "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"
        )
    )
    return chart


@pytest.fixture(scope="module")
def checkov_report(
    tmp_path_factory: pytest.TempPathFactory,
    default_objects: list[Manifest],
    production_objects: list[Manifest],
) -> dict[str, Any]:
    """One checkov run (it takes seconds to start) over both renderings and a weakened chart's,
    each in its own folder."""
    root = tmp_path_factory.mktemp("checkov")
    write_manifests(default_objects, root / "default")
    write_manifests(production_objects, root / "production")
    write_manifests(manifests(render(chart_dir=weakened_chart(root))), root / "weakened")
    return run_checkov([root], "kubernetes")


def pod_labels(objects: list[Manifest]) -> dict[str, dict[str, str]]:
    """Each workload's pod labels, by the workload's name."""
    return {w["metadata"]["name"]: t["metadata"]["labels"] for w, t in pod_specs(objects)}


# Lint, render, schemas ----------------------------------------------------------------------


def test_lint_is_clean_for_both_values_files(production_values: dict[str, Any]) -> None:
    assert lint_errors() == []
    assert lint_errors(production_values) == []


def test_the_render_targets_the_kubernetes_version_asked(tmp_path: Path) -> None:
    """What the chart's templates see as .Capabilities.KubeVersion is the version validated."""
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (chart / "templates" / "version.yaml").write_text(
        "kind: Probe\nversion: {{ .Capabilities.KubeVersion.Version }}\n"
    )
    assert manifests(render(chart_dir=chart)) == [{"kind": "Probe", "version": "v1.30.0"}]
    assert manifests(render(chart_dir=chart, kube_version="1.33.1"))[0]["version"] == "v1.33.1"


def test_every_object_is_valid_for_kubernetes_1_30_strict(objects: list[Manifest]) -> None:
    for manifest in objects:
        validate(manifest)
    assert {o["kind"] for o in objects} >= {
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Secret",
        "Service",
        "ServiceAccount",
        "StatefulSet",
    }


def test_the_production_file_renders_what_a_gpu_cluster_needs(
    production_objects: list[Manifest],
) -> None:
    kinds = {o["kind"] for o in production_objects}
    assert {"Ingress", "ScaledObject", "TriggerAuthentication", "StatefulSet"} <= kinds
    ingress = one(production_objects, "Ingress", "meshcast-gateway")
    assert ingress["spec"]["tls"][0]["hosts"] == ["meshcast.example.com"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "meshcast-gateway", "port": {"name": "http"}}


def test_the_keda_schema_refuses_a_misspelt_field(production_objects: list[Manifest]) -> None:
    scaled = one(production_objects, "ScaledObject", "meshcast-worker")
    spec = scaled["spec"]
    broken = {**scaled, "spec": {**spec, "maxReplicas": spec["maxReplicaCount"]}}
    with pytest.raises(jsonschema.ValidationError, match="maxReplicas"):
        validate(broken)


# The service's settings ---------------------------------------------------------------------


def config_of(objects: list[Manifest]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(
        one(objects, "ConfigMap", "meshcast")["data"]["config.yaml"]
    )
    return config


def test_the_configmap_is_settings_the_service_accepts(objects: list[Manifest]) -> None:
    settings = ServiceSettings.model_validate(config_of(objects))
    gateway = one(objects, "Deployment", "meshcast-gateway")["spec"]["template"]
    container = gateway["spec"]["containers"][0]
    assert (settings.gateway.host, settings.gateway.port) == ("0.0.0.0", 8000)
    assert container["ports"] == [
        {"name": "http", "containerPort": 8000, "protocol": "TCP"},
        {"name": "metrics", "containerPort": settings.gateway.metrics_port, "protocol": "TCP"},
    ]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert str(settings.gateway.api_keys_file) == f"{mounts['api-keys']}/api-keys.yaml"
    assert env(container)["MESHCAST_CONFIG"]["value"] == f"{mounts['config']}/config.yaml"
    # Only the gateway reads the keys (service.settings.resolve_api_keys): the workers lack them.
    worker = one(objects, "Deployment", "meshcast-worker")["spec"]["template"]["spec"]
    assert "api-keys" not in {volume["name"] for volume in worker["volumes"]}


def test_the_settings_values_are_the_services_own_keys() -> None:
    """values.schema.json's `settings` names only fields of service/settings.py (a renamed one
    fails here), and none of those the chart sets itself."""
    schema = yaml.safe_load((CHART_DIR / "values.schema.json").read_text())

    def check(properties: dict[str, Any], model: type[pydantic.BaseModel]) -> None:
        assert set(properties) <= set(model.model_fields), model.__name__
        for name, sub in properties.items():
            annotation = model.model_fields[name].annotation
            if "properties" in sub:
                assert isinstance(annotation, type)
                assert issubclass(annotation, pydantic.BaseModel)
                check(sub["properties"], annotation)
            elif sub.get("enum"):
                assert set(sub["enum"]) == set(get_args(annotation)), name

    settings = schema["properties"]["settings"]["properties"]
    check(settings, ServiceSettings)
    assert not {"redis_url", "bundle"} & set(settings)
    chart_set = {"host", "port", "api_keys_file", "metrics_host", "metrics_port"}
    assert not ({"api_keys"} | chart_set) & set(settings["gateway"]["properties"])
    assert "device" not in settings["worker"]["properties"]


def test_every_value_is_documented() -> None:
    """Each value of values.yaml has its place in values.schema.json, with a description."""
    schema = yaml.safe_load((CHART_DIR / "values.schema.json").read_text())
    definitions = schema["definitions"]

    def described(node: dict[str, Any], value: Any, where: str) -> None:
        assert node.get("description"), where
        target = definitions[node["$ref"].split("/")[-1]] if "$ref" in node else node
        if not isinstance(value, dict) or "properties" not in target:
            return
        for key, sub in value.items():
            assert key in target["properties"], f"{where}.{key} is not in the schema"
            described(target["properties"][key], sub, f"{where}.{key}")

    described(schema | {"description": schema["title"]}, load_values(CHART_DIR / "values.yaml"), "")


def test_an_unknown_setting_is_refused_by_the_schema() -> None:
    with pytest.raises(helm_python.HelmValuesError, match="prefx"):
        render({"settings": {"store": {"prefx": "x:"}}})


def test_the_api_keys_secret_is_the_file_the_gateway_reads(tmp_path: Path) -> None:
    objects = manifests(render({"apiKeys": {"keys": [API_KEY]}}))
    secret = one(objects, "Secret", "meshcast-api-keys")
    keys_file = tmp_path / "api-keys.yaml"
    keys_file.write_text(secret["stringData"]["api-keys.yaml"])
    assert [k.model_dump() for k in read_api_keys(keys_file)] == [API_KEY]
    # None at all is an empty list, which the service reads as no keys.
    empty = one(manifests(render()), "Secret", "meshcast-api-keys")
    keys_file.write_text(empty["stringData"]["api-keys.yaml"])
    assert read_api_keys(keys_file) == []


def test_a_changed_setting_rolls_the_pods(default_objects: list[Manifest]) -> None:
    changed = manifests(render({"settings": {"worker": {"soft_time_limit_s": 60}}}))
    for name in ("meshcast-gateway", "meshcast-worker"):
        before = one(default_objects, "Deployment", name)["spec"]["template"]["metadata"]
        after = one(changed, "Deployment", name)["spec"]["template"]["metadata"]
        assert before["annotations"]["checksum/config"] != after["annotations"]["checksum/config"]


# Workers --------------------------------------------------------------------------------------


def worker_container(objects: list[Manifest]) -> Manifest:
    worker = one(objects, "Deployment", "meshcast-worker")
    container: Manifest = worker["spec"]["template"]["spec"]["containers"][0]
    return container


def test_the_gpu_worker_takes_one_gpu_and_runs_one_job(
    production_objects: list[Manifest], production_values: dict[str, Any]
) -> None:
    pod = one(production_objects, "Deployment", "meshcast-worker")["spec"]["template"]["spec"]
    container = worker_container(production_objects)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["command"] + container["args"][:3] == [
        "meshcast",
        "worker",
        "--concurrency",
        "1",
    ]
    assert env(container)["MESHCAST_DEVICE"]["value"] == "cuda"
    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert toleration in pod["tolerations"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    # The production file promises that every job finishes before its worker is killed.
    time_limit = production_values["settings"]["worker"]["time_limit_s"]
    assert pod["terminationGracePeriodSeconds"] > time_limit


def test_the_default_worker_runs_on_the_cpu_anywhere(default_objects: list[Manifest]) -> None:
    pod = one(default_objects, "Deployment", "meshcast-worker")["spec"]["template"]["spec"]
    container = worker_container(default_objects)
    for section in container["resources"].values():
        assert not any("gpu" in name for name in section)
    assert env(container)["MESHCAST_DEVICE"]["value"] == "cpu"
    assert "tolerations" not in pod
    assert "nodeSelector" not in pod
    # Celery's warm shutdown gets the documented default to finish the running job.
    assert pod["terminationGracePeriodSeconds"] == 900


def test_worker_probes_are_celerys_ping(objects: list[Manifest]) -> None:
    container = worker_container(objects)
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = container[kind]
        command = probe["exec"]["command"]
        assert command[:3] == ["meshcast", "worker", "ping"]
        # The probe outlasts the ping's own timeout plus the command's start.
        assert probe["timeoutSeconds"] >= float(command[command.index("--timeout") + 1]) + 10


# Gateway --------------------------------------------------------------------------------------


def test_the_gateways_metrics_are_on_the_pods_alone(objects: list[Manifest]) -> None:
    """Prometheus's metrics are served on a port of their own, scraped from the pods; the
    Service (and so the Ingress) routes the API's port only."""
    config = config_of(objects)["gateway"]
    assert (config["metrics_host"], config["metrics_port"]) == ("0.0.0.0", 9100)
    deployment = one(objects, "Deployment", "meshcast-gateway")["spec"]["template"]
    (container,) = deployment["spec"]["containers"]
    assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in container["ports"]
    annotations = deployment["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9100"
    assert annotations["prometheus.io/path"] == "/metrics"
    service = one(objects, "Service", "meshcast-gateway")["spec"]
    assert [port["targetPort"] for port in service["ports"]] == ["http"]


def test_gateway_probes_health_and_readiness(objects: list[Manifest]) -> None:
    gateway = one(objects, "Deployment", "meshcast-gateway")["spec"]["template"]["spec"]
    container = gateway["containers"][0]
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    # /readyz may ping the workers with worker_ping_timeout_s; the probe waits longer.
    ping_s = config_of(objects)["gateway"]["worker_ping_timeout_s"]
    assert container["readinessProbe"]["timeoutSeconds"] > ping_s
    # The grace period holds the preStop pause and the time the gateway gives open requests.
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    shutdown_s = config_of(objects)["gateway"]["server"]["graceful_shutdown_s"]
    assert gateway["terminationGracePeriodSeconds"] > pause + shutdown_s


def test_the_gateway_hpa_and_pdb_cover_the_gateway_pods(objects: list[Manifest]) -> None:
    deployment = one(objects, "Deployment", "meshcast-gateway")
    hpa = one(objects, "HorizontalPodAutoscaler", "meshcast-gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "meshcast-gateway",
    }
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert "replicas" not in deployment["spec"]  # the HPA's to set
    # Drains take one gateway, and one worker, at a time.
    pods = pod_labels(objects)
    for name in ("meshcast-gateway", "meshcast-worker"):
        pdb = one(objects, "PodDisruptionBudget", name)["spec"]
        assert pdb["maxUnavailable"] == 1
        assert [p for p in pods if selects(pdb["selector"], pods[p])] == [name]
    # No autoscaler but KEDA's touches the workers.
    targets = [
        h["spec"]["scaleTargetRef"]["name"] for h in find(objects, "HorizontalPodAutoscaler")
    ]
    assert targets == ["meshcast-gateway"]


# KEDA -----------------------------------------------------------------------------------------


def test_keda_scales_the_workers_on_the_queue(production_objects: list[Manifest]) -> None:
    worker = one(production_objects, "Deployment", "meshcast-worker")
    scaled = one(production_objects, "ScaledObject", "meshcast-worker")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert "replicas" not in worker["spec"]  # KEDA's HPA sets them
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] == 8
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "redis"
    assert set(trigger["metadata"]) <= KEDA_REDIS_METADATA
    # The list Celery queues the jobs on, as the service names it.
    settings = ServiceSettings.model_validate(config_of(production_objects))
    assert trigger["metadata"]["listName"] == broker_prefix(settings) + QUEUE
    assert trigger["metadata"]["listName"] == "meshcast:celery:meshcast.jobs"
    assert trigger["metadata"]["address"] == f"meshcast-redis.{NAMESPACE}.svc:6379"
    # The password comes from the Secret the chart made for Redis.
    auth = one(production_objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    (ref,) = auth["spec"]["secretTargetRef"]
    secret = one(production_objects, "Secret", ref["name"])
    assert ref["parameter"] == "password"
    assert secret["stringData"][ref["key"]] == PRODUCTION_INSTALL["redis"]["auth"]["password"]


def test_keda_follows_the_store_prefix() -> None:
    objects = manifests(
        render({"keda": {"enabled": True}, "settings": {"store": {"prefix": "prod:"}}})
    )
    trigger = one(objects, "ScaledObject", "meshcast-worker")["spec"]["triggers"][0]
    assert trigger["metadata"]["listName"] == "prod:celery:meshcast.jobs"
    assert "authenticationRef" not in trigger  # the default Redis has no password


def test_keda_scales_to_zero_only_where_the_gateway_is_ready_without_a_worker() -> None:
    """A gateway ready only while a worker answers could never queue the job that scales the
    workers up again."""
    to_zero = {"enabled": True, "minReplicaCount": 0}
    objects = manifests(render({"keda": to_zero}))
    assert one(objects, "ScaledObject", "meshcast-worker")["spec"]["minReplicaCount"] == 0
    assert config_of(objects)["gateway"]["readyz_requires_worker"] is False
    with pytest.raises(helm_python.HelmError, match="readyz_requires_worker false"):
        render({"keda": to_zero, "settings": {"gateway": {"readyz_requires_worker": True}}})


# Security and resources ---------------------------------------------------------------------


def test_every_pod_and_container_is_locked_down(objects: list[Manifest]) -> None:
    workloads = list(pod_specs(objects))
    assert {w["metadata"]["name"] for w, _ in workloads} == {
        "meshcast-gateway",
        "meshcast-worker",
        "meshcast-redis",
    }
    for workload, template in workloads:
        pod = template["spec"]
        name = workload["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["serviceAccountName"] == "meshcast", name
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] == UID, name
        assert context["seccompProfile"] == RUNTIME_DEFAULT, name
        tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for container in containers(template):
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True, where
            assert security["runAsUser"] == UID, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert security["seccompProfile"] == RUNTIME_DEFAULT, where
            resources = container["resources"]
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[section]), where
            # A read-only root: /tmp is an emptyDir.
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1
            assert tmp[0]["name"] in tmp_volumes, where
    service_account = one(objects, "ServiceAccount", "meshcast")
    assert service_account["automountServiceAccountToken"] is False


def test_the_redis_url_comes_from_a_secret(objects: list[Manifest]) -> None:
    """MESHCAST_REDIS_URL names the chart's Redis Service (and its password, if any)."""
    redis = one(objects, "StatefulSet", "meshcast-redis")["spec"]["template"]["spec"]
    password = env(redis["containers"][0]).get("REDISCLI_AUTH")
    for workload in ("meshcast-gateway", "meshcast-worker"):
        container = one(objects, "Deployment", workload)["spec"]["template"]["spec"]["containers"][
            0
        ]
        ref = env(container)["MESHCAST_REDIS_URL"]["valueFrom"]["secretKeyRef"]
        secret = one(objects, "Secret", ref["name"])["stringData"]
        url = urlsplit(secret[ref["key"]])
        assert (url.scheme, url.port, url.path) == ("redis", 6379, "/0")
        assert one(objects, "Service", str(url.hostname))["spec"]["ports"][0]["port"] == 6379
        if password is None:
            assert url.password is None
        else:
            assert password["valueFrom"]["secretKeyRef"] == {"name": ref["name"], "key": "password"}
            assert url.password == secret["password"]


# Redis ----------------------------------------------------------------------------------------


def test_redis_persists_its_append_only_file(objects: list[Manifest]) -> None:
    redis = one(objects, "StatefulSet", "meshcast-redis")
    container = redis["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--dir") + 1] == "/data"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"]
    service = one(objects, "Service", "meshcast-redis")
    assert selects(
        {"matchLabels": service["spec"]["selector"]},
        redis["spec"]["template"]["metadata"]["labels"],
    )
    assert service["spec"]["ports"][0]["port"] == 6379
    assert container["readinessProbe"]["exec"]["command"][-1].startswith("redis-cli")


def test_production_redis_requires_its_password(production_objects: list[Manifest]) -> None:
    redis = one(production_objects, "StatefulSet", "meshcast-redis")
    container = redis["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    # The password from a file of the Secret: never on the command line, which anyone on the
    # node can read from the process list.
    assert not [word for word in [*container["command"], *args] if "requirepass" in word]
    assert "--protected-mode" not in args
    assert container["command"] == ["redis-server", "/etc/redis-auth/auth.conf"]
    assert {"name": "auth", "mountPath": "/etc/redis-auth", "readOnly": True} in container[
        "volumeMounts"
    ]
    (volume,) = [v for v in redis["spec"]["template"]["spec"]["volumes"] if v["name"] == "auth"]
    secret = one(production_objects, "Secret", volume["secret"]["secretName"])["stringData"]
    password = PRODUCTION_INSTALL["redis"]["auth"]["password"]
    assert secret["auth.conf"] == f"requirepass {password}\n"
    assert set(env(container)) == {"REDISCLI_AUTH"}  # for redis-cli, the readiness probe


def test_an_external_redis_replaces_the_statefulset() -> None:
    objects = manifests(
        render(
            {
                "redis": {"enabled": False, "existingSecret": {"name": "managed-redis"}},
                "keda": {
                    "enabled": True,
                    "redis": {
                        "address": "redis.example.internal:6380",
                        "enableTLS": True,
                        "passwordSecret": {"name": "managed-redis-password"},
                    },
                },
            }
        )
    )
    for manifest in objects:
        validate(manifest)
    # No Redis of the chart's: no StatefulSet, Service, NetworkPolicy or Secret.
    assert not [o for o in objects if "redis" in o["metadata"]["name"]]
    ref = env(worker_container(objects))["MESHCAST_REDIS_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "managed-redis", "key": "url"}
    trigger = one(objects, "ScaledObject", "meshcast-worker")["spec"]["triggers"][0]
    assert trigger["metadata"]["address"] == "redis.example.internal:6380"
    assert trigger["metadata"]["enableTLS"] == "true"
    auth = one(objects, "TriggerAuthentication", "meshcast-worker")
    assert auth["spec"]["secretTargetRef"][0]["name"] == "managed-redis-password"


def test_an_external_redis_needs_its_url() -> None:
    with pytest.raises(helm_python.HelmValuesError, match="externalUrl"):
        render({"redis": {"enabled": False}})


# NetworkPolicies ------------------------------------------------------------------------------


def test_only_the_gateway_and_workers_reach_redis(objects: list[Manifest]) -> None:
    labels = pod_labels(objects)
    policies = find(objects, "NetworkPolicy")
    for name, pod in labels.items():
        assert any(selects(p["spec"]["podSelector"], pod) for p in policies), name
    redis = one(objects, "NetworkPolicy", "meshcast-redis")["spec"]
    assert selects(redis["podSelector"], labels["meshcast-redis"])
    assert not selects(redis["podSelector"], labels["meshcast-gateway"])
    (rule,) = redis["ingress"]
    assert rule["ports"] == [{"port": 6379, "protocol": "TCP"}]
    same_namespace = [p for p in rule["from"] if "namespaceSelector" not in p]
    (peer,) = same_namespace
    assert selects(peer["podSelector"], labels["meshcast-gateway"])
    assert selects(peer["podSelector"], labels["meshcast-worker"])
    assert not selects(peer["podSelector"], labels["meshcast-redis"])
    assert not selects(
        peer["podSelector"], {**labels["meshcast-gateway"], "app.kubernetes.io/instance": "other"}
    )
    # Only the KEDA operator besides them, and only where KEDA is on.
    others = [p for p in rule["from"] if "namespaceSelector" in p]
    keda = bool(find(objects, "ScaledObject"))
    assert len(others) == int(keda)
    if keda:
        assert others[0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "keda"
        }
        assert others[0]["podSelector"]["matchLabels"] == {
            "app.kubernetes.io/name": "keda-operator"
        }
    gateway = one(objects, "NetworkPolicy", "meshcast-gateway")["spec"]
    assert selects(gateway["podSelector"], labels["meshcast-gateway"])
    assert [r["ports"] for r in gateway["ingress"]] == [
        [{"port": 8000, "protocol": "TCP"}],
        [{"port": 9100, "protocol": "TCP"}],  # the metrics: Prometheus
    ]
    worker = one(objects, "NetworkPolicy", "meshcast-worker")["spec"]
    assert selects(worker["podSelector"], labels["meshcast-worker"])
    assert worker["policyTypes"] == ["Ingress"]
    assert "ingress" not in worker  # nothing may connect to a worker


# Bundles --------------------------------------------------------------------------------------


def test_the_default_bundle_is_a_read_only_claim(default_objects: list[Manifest]) -> None:
    for workload in ("meshcast-gateway", "meshcast-worker"):
        template = one(default_objects, "Deployment", workload)["spec"]["template"]
        pod = template["spec"]
        assert "initContainers" not in pod
        (volume,) = [v for v in pod["volumes"] if v["name"] == "bundle"]
        assert volume["persistentVolumeClaim"] == {
            "claimName": "meshcast-bundles",
            "readOnly": True,
        }
        container = pod["containers"][0]
        assert {"name": "bundle", "mountPath": "/bundles", "readOnly": True} in container[
            "volumeMounts"
        ]
        assert env(container)["MESHCAST_BUNDLE"]["value"] == "/bundles/default"


def test_the_production_bundle_is_fetched_and_checked(
    production_objects: list[Manifest], production_values: dict[str, Any]
) -> None:
    sha256 = production_values["bundle"]["sha256"]
    for workload in ("meshcast-gateway", "meshcast-worker"):
        pod = one(production_objects, "Deployment", workload)["spec"]["template"]["spec"]
        (fetch,) = pod["initContainers"]
        assert fetch["image"] == pod["containers"][0]["image"]
        assert fetch["command"] + fetch["args"] == [
            "meshcast",
            "fetch-bundle",
            "$(MESHCAST_BUNDLE_URL)",
            "/bundles",
            "--sha256",
            sha256,
        ]
        url = env(fetch)["MESHCAST_BUNDLE_URL"]["valueFrom"]["secretKeyRef"]
        assert url == {"name": "meshcast-bundle-url", "key": "url"}
        (volume,) = [v for v in pod["volumes"] if v["name"] == "bundle"]
        assert "emptyDir" in volume
        assert {"name": "bundle", "mountPath": "/bundles"} in fetch["volumeMounts"]
        container = pod["containers"][0]
        assert {"name": "bundle", "mountPath": "/bundles", "readOnly": True} in container[
            "volumeMounts"
        ]
        assert env(container)["MESHCAST_BUNDLE"]["value"] == "/bundles"


def test_a_fetched_bundle_needs_its_sha256() -> None:
    with pytest.raises(helm_python.HelmValuesError, match="sha256"):
        render({"bundle": {"source": "url", "url": "https://example.com/bundle.tar.gz"}})


# checkov --------------------------------------------------------------------------------------


def test_checkov_passes_both_renderings(checkov_report: dict[str, Any]) -> None:
    results = checkov_report["results"]
    assert checkov_report["summary"]["parsing_errors"] == 0
    ours = [c for c in results["failed_checks"] if "/weakened/" not in c["file_path"]]
    assert ours == []
    passed = {c["file_path"].split("/")[1] for c in results["passed_checks"]}
    assert {"default", "production"} <= passed
    # Each skip is one of the chart's, with its reason.
    assert checkov_skips_without_reason(checkov_report) == []
    skipped = {c["check_id"] for c in results["skipped_checks"]}
    assert skipped == {"CKV_K8S_15", "CKV_K8S_35", "CKV_K8S_43"}


def test_checkov_catches_a_weakened_chart(checkov_report: dict[str, Any]) -> None:
    failed = {
        (c["check_id"], c["resource"].split(".")[-1])
        for c in checkov_report["results"]["failed_checks"]
        if "/weakened/" in c["file_path"]
    }
    for workload in ("meshcast-gateway", "meshcast-worker", "meshcast-redis"):
        assert ("CKV_K8S_20", workload) in failed  # allowPrivilegeEscalation
        assert ("CKV_K8S_22", workload) in failed  # readOnlyRootFilesystem


# A broken chart is caught ---------------------------------------------------------------------


@pytest.fixture
def chart_copy(tmp_path: Path) -> Path:
    chart = tmp_path / "meshcast"
    shutil.copytree(CHART_DIR, chart)
    return chart


def break_template(chart: Path, template: str, old: str, new: str) -> None:
    path = chart / "templates" / template
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_a_wrong_indentation_is_caught(chart_copy: Path) -> None:
    break_template(
        chart_copy,
        "worker-deployment.yaml",
        "          imagePullPolicy:",
        "        imagePullPolicy:",
    )
    assert any("worker-deployment.yaml" in e for e in lint_errors(chart_dir=chart_copy))
    with pytest.raises(yaml.YAMLError):
        manifests(render(chart_dir=chart_copy))


def test_an_unknown_field_is_caught(chart_copy: Path) -> None:
    break_template(
        chart_copy, "gateway-deployment.yaml", "          imagePullPolicy:", "          pullPolicy:"
    )
    assert lint_errors(chart_dir=chart_copy) == []  # valid YAML: only the schemas know
    gateway = one(manifests(render(chart_dir=chart_copy)), "Deployment", "meshcast-gateway")
    with pytest.raises(jsonschema.ValidationError, match="pullPolicy"):
        validate(gateway)


def test_a_template_error_is_caught(chart_copy: Path) -> None:
    break_template(chart_copy, "configmap.yaml", "{{- toYaml $settings", "{{- toYaml $setings")
    assert lint_errors(chart_dir=chart_copy)
    with pytest.raises(helm_python.HelmError, match="setings"):
        render(chart_dir=chart_copy)


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"worker": {"gpu": {"enabled": "yes"}}}, "enabled"),
        ({"gateway": {"replicas": "two"}}, "replicas"),
        ({"worker": {"resources": {"limits": {"cpu": "two cores"}}}}, "cpu"),
        ({"worker": {"nodeSelector": {"gpu": True}}}, "gpu"),
    ],
)
def test_a_value_of_the_wrong_type_is_caught(values: dict[str, Any], key: str) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=key):
        render(values)
    assert any(key in e for e in lint_errors(values))
