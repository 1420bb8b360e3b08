"""The Helm chart's offline checks (tests/deploy/test_chart.py): render and lint it with Helm's
own Go library (helm-python-sdk), validate what it renders against Kubernetes' JSON schemas,
write the renderings out for checkov (tests/support/deploy_tools.py runs it), and read the
rendered objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import yaml
from helm_python import _native

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "k8s" / "meshcast"
PRODUCTION_VALUES = ROOT / "k8s" / "values-gpu-production.yaml"
KUBE_VERSION = "1.30.0"
RELEASE = "meshcast"
NAMESPACE = "meshcast"

Manifest = dict[str, Any]

# KEDA's kinds, which kubernetes-validate has no schema for: the fields of keda.sh/v1alpha1 that
# the chart writes, as KEDA's CRDs define them (spec required, trigger metadata all strings),
# closed wherever the chart writes the object, so a misspelt field fails here as it would on
# the API server.
_SECRET_TARGET = {
    "type": "object",
    "additionalProperties": False,
    "required": ["parameter", "name", "key"],
    "properties": {k: {"type": "string", "minLength": 1} for k in ("parameter", "name", "key")},
}
_KEDA_METADATA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_INT32 = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
KEDA_SCHEMAS: dict[str, dict[str, Any]] = {
    "ScaledObject": {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "ScaledObject"},
            "metadata": _KEDA_METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["scaleTargetRef", "triggers"],
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "kind": {"type": "string"},
                            "apiVersion": {"type": "string"},
                            "envSourceContainerName": {"type": "string"},
                        },
                    },
                    "pollingInterval": _INT32,
                    "cooldownPeriod": _INT32,
                    "initialCooldownPeriod": _INT32,
                    "idleReplicaCount": _INT32,
                    "minReplicaCount": _INT32,
                    "maxReplicaCount": _INT32,
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["type", "metadata"],
                            "properties": {
                                "type": {"type": "string", "minLength": 1},
                                "name": {"type": "string"},
                                "metadata": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                                "authenticationRef": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["name"],
                                    "properties": {
                                        "name": {"type": "string", "minLength": 1},
                                        "kind": {
                                            "enum": [
                                                "TriggerAuthentication",
                                                "ClusterTriggerAuthentication",
                                            ]
                                        },
                                    },
                                },
                                "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                                "useCachedMetrics": {"type": "boolean"},
                            },
                        },
                    },
                },
            },
        },
    },
    "TriggerAuthentication": {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "TriggerAuthentication"},
            "metadata": _KEDA_METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["secretTargetRef"],
                "properties": {
                    "secretTargetRef": {"type": "array", "minItems": 1, "items": _SECRET_TARGET}
                },
            },
        },
    },
}
# The redis scaler's metadata keys (KEDA's redis list scaler), all strings.
KEDA_REDIS_METADATA = {
    "address",
    "host",
    "port",
    "listName",
    "listLength",
    "activationListLength",
    "databaseIndex",
    "enableTLS",
    "unsafeSsl",
    "usernameFromEnv",
    "passwordFromEnv",
    "addressFromEnv",
    "hostFromEnv",
    "portFromEnv",
}


def load_values(path: Path) -> dict[str, Any]:
    """A values file, as ``helm -f`` reads it."""
    values: dict[str, Any] = helm_python.values_from_yaml(path.read_text())
    return values


def render(
    values: dict[str, Any] | None = None,
    chart_dir: Path = CHART_DIR,
    kube_version: str = KUBE_VERSION,
) -> dict[str, str]:
    """``helm template`` offline for Kubernetes ``kube_version``: template path → its output.

    The SDK's ``Chart.render`` takes no Kubernetes version, but the library's render call does
    (``kube_version``, what ``helm template --kube-version`` sets), so it is called directly:
    the templates' ``.Capabilities.KubeVersion`` is then ``kube_version``. (Neither this nor
    lint checks Chart.yaml's ``kubeVersion``: only an install does.)

    Raises:
        helm_python.HelmError: the values fail the schema, or a template fails.
    """
    options = {"name": RELEASE, "namespace": NAMESPACE, "kube_version": f"v{kube_version}"}
    with helm_python.Chart.load(chart_dir) as chart:
        rendered: dict[str, str] = json.loads(
            _native.call_string(
                "helm_render", chart._raw(), json.dumps(values or {}), json.dumps(options)
            )
        )
    return rendered


def manifests(rendered: dict[str, str]) -> list[Manifest]:
    """Every object of a rendering (NOTES.txt left out), in template order.

    Raises:
        yaml.YAMLError: a template's output is not YAML.
    """
    objects: list[Manifest] = []
    for path in sorted(rendered):
        if not path.endswith(".txt"):
            objects.extend(doc for doc in yaml.safe_load_all(rendered[path]) if doc)
    return objects


def lint_errors(values: dict[str, Any] | None = None, chart_dir: Path = CHART_DIR) -> list[str]:
    """``helm lint --strict --kube-version``: its warnings and errors (info messages aside)."""
    report = helm_python.lint(
        chart_dir, values or {}, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}"
    )
    messages = [f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2]
    return messages + list(report["errors"])


def validate(manifest: Manifest) -> None:
    """Check one object against Kubernetes' schemas in strict mode (unknown fields refused), or
    KEDA's kinds against :data:`KEDA_SCHEMAS`.

    Raises:
        jsonschema.ValidationError: the object is not valid (kubernetes-validate's subclass for
            Kubernetes' own kinds).
        kubernetes_validate.SchemaNotFoundError: a kind Kubernetes' schemas do not know.
        KeyError: a KEDA kind that :data:`KEDA_SCHEMAS` does not have.
    """
    kind = manifest.get("kind", "")
    if str(manifest.get("apiVersion", "")).startswith("keda.sh/"):
        jsonschema.Draft202012Validator(KEDA_SCHEMAS[kind]).validate(manifest)
        return
    kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)


def write_manifests(objects: list[Manifest], folder: Path) -> None:
    """One YAML file per object under ``folder``, for checkov."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, manifest in enumerate(objects):
        name = f"{index:02d}-{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"
        (folder / name).write_text(yaml.safe_dump(manifest, sort_keys=False))


def find(objects: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    """The objects of ``kind`` (and ``name``, if given)."""
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objects: list[Manifest], kind: str, name: str) -> Manifest:
    """The single object of ``kind`` named ``name``."""
    found = find(objects, kind, name)
    assert len(found) == 1, f"{len(found)} {kind} named {name}"
    return found[0]


def pod_specs(objects: list[Manifest]) -> Iterator[tuple[Manifest, Manifest]]:
    """(workload, its pod template) of every Deployment and StatefulSet."""
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet"):
            yield o, o["spec"]["template"]


def containers(pod_template: Manifest) -> list[Manifest]:
    """A pod template's init containers and containers."""
    spec = pod_template["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels, and matchExpressions with In, NotIn, Exists,
    DoesNotExist) selects an object with ``labels``."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def env(container: Manifest) -> dict[str, Manifest]:
    """A container's environment variables by name (each its ``value`` or ``valueFrom``)."""
    return {e["name"]: e for e in container.get("env", [])}
