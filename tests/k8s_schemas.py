"""Rendered manifests checked against the real schemas, offline.

- Kubernetes core objects: ``kubernetes-validate`` (the API server's OpenAPI schemas,
  shipped in the package), strict: an unknown field fails.
- A Kubeflow TFJob: the training operator's Python SDK (``kubeflow-training``), whose
  models are generated from the operator's OpenAPI spec. The manifest is read as
  ``KubeflowOrgV1TFJob`` the way ``TrainingClient`` reads one from the API server, and
  written back: a field the SDK does not know is dropped and a value of the wrong type
  changes, so anything but an identical round trip fails. Its pod template is then checked
  by kubernetes-validate.
- An Argo Workflow: hera's models (generated from Argo's OpenAPI spec) validate it and must
  give it back unchanged; each step's container, in a pod with the workflow's volumes and
  placement, is checked by kubernetes-validate.
"""

from __future__ import annotations

import copy
from typing import Any

K8S_VERSION = "1.33"
"""The Kubernetes version the manifests are checked against."""


def validate_k8s(obj: dict[str, Any]) -> None:
    """Raise unless ``obj`` is a valid Kubernetes core object (no unknown fields)."""
    import kubernetes_validate

    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def validate_pod_template(template: dict[str, Any]) -> None:
    validate_k8s({"apiVersion": "v1", "kind": "PodTemplate",
                  "metadata": {"name": "cvatkit"}, "template": template})


def validate_tfjob(doc: dict[str, Any]) -> None:
    """Raise unless ``doc`` is a TFJob the training operator's SDK reads back unchanged, with
    valid pod templates."""
    from kubeflow.training import ApiClient
    from kubeflow.training.utils.utils import FakeResponse

    assert (doc.get("apiVersion"), doc.get("kind")) == ("kubeflow.org/v1", "TFJob"), doc
    client = ApiClient()
    job = client.deserialize(FakeResponse(doc), "KubeflowOrgV1TFJob")
    back = client.sanitize_for_serialization(job)
    if back != doc:
        raise AssertionError(f"the TFJob does not survive the SDK's models:\n{_diff(doc, back)}")
    for replica in doc["spec"]["tfReplicaSpecs"].values():
        validate_pod_template(replica["template"])


def validate_workflow(doc: dict[str, Any]) -> None:
    """Raise unless hera's Workflow model takes ``doc`` and gives it back unchanged, and
    every container step makes a valid pod."""
    from hera.workflows import Workflow
    from hera.workflows import models as m

    assert (doc.get("apiVersion"), doc.get("kind")) == ("argoproj.io/v1alpha1", "Workflow")
    model = m.Workflow.model_validate(doc)
    back = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    if back != doc:
        raise AssertionError(f"the Workflow does not survive hera's models:\n{_diff(doc, back)}")
    assert Workflow.from_dict(copy.deepcopy(doc)).to_dict() == doc
    spec = doc["spec"]
    placement = {k: spec[k] for k in ("nodeSelector", "tolerations", "securityContext",
                                      "serviceAccountName") if k in spec}
    for template in spec["templates"]:
        if "container" in template:
            container = {"name": "main", **template["container"]}
            validate_k8s({"apiVersion": "v1", "kind": "Pod",
                          "metadata": {"name": template["name"]},
                          "spec": {"containers": [container], "volumes": spec.get("volumes", []),
                                   "restartPolicy": "Never", **placement}})


def _diff(a: Any, b: Any, path: str = "") -> str:
    """Where two JSON values first differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key, "<missing>") != b.get(key, "<missing>"):
                return _diff(a.get(key, "<missing>"), b.get(key, "<missing>"), f"{path}.{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _diff(x, y, f"{path}[{i}]")
    return f"{path or '.'}: {a!r} became {b!r}"
