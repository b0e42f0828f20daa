"""The parts every cvatkit pod shares, as Kubernetes writes them: the claim and its mount,
credentials from Secrets (by reference: a manifest never holds a secret's value), plain
settings, GPUs, nodes and the user the pod runs as."""

from __future__ import annotations

from typing import Any

from ..cvat.server import HOST_ENV, PASSWORD_ENV, TOKEN_ENV, USER_ENV
from .options import ClusterOptions

VOLUME = "work"
"""The pod's name for the claim's volume."""
GPU_RESOURCE = "nvidia.com/gpu"
S3_KEYS = (("AWS_ACCESS_KEY_ID", False), ("AWS_SECRET_ACCESS_KEY", False),
           ("AWS_ENDPOINT_URL", True), ("AWS_DEFAULT_REGION", True))
"""The S3 Secret's keys, each the environment variable of that name (True: optional)."""
CVAT_KEYS = ((HOST_ENV, False), (TOKEN_ENV, True), (USER_ENV, True), (PASSWORD_ENV, True))
"""The CVAT Secret's keys: the host, and a token or a user and password."""
ALWAYS = (("PYTHONUNBUFFERED", "1"),)
"""Set in every pod: its lines reach the pod's log as they are printed."""


def volume(options: ClusterOptions) -> dict[str, Any]:
    return {"name": VOLUME, "persistentVolumeClaim": {"claimName": options.claim}}


def volume_mount(options: ClusterOptions) -> dict[str, Any]:
    return {"name": VOLUME, "mountPath": str(options.mount)}


def environment(options: ClusterOptions, *, s3: bool = True,
                cvat: bool = True) -> list[dict[str, Any]]:
    """The container's ``env``: plain settings by value, credentials as references to the
    keys of the named Secrets (``valueFrom.secretKeyRef``)."""
    env = [{"name": name, "value": value} for name, value in (*ALWAYS, *options.env)]
    for wanted, secret, keys in ((s3, options.s3_secret, S3_KEYS),
                                 (cvat, options.cvat_secret, CVAT_KEYS)):
        if wanted and secret:
            env += [{"name": key, "valueFrom": {"secretKeyRef": {
                "name": secret, "key": key, **({"optional": True} if optional else {})}}}
                for key, optional in keys]
    env += [{"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            for name, secret, key in options.secret_env]
    return env


def resources(gpus: int) -> dict[str, Any]:
    """The container's ``resources``: ``gpus`` NVIDIA GPUs (none: no limit at all)."""
    return {"limits": {GPU_RESOURCE: str(gpus)}} if gpus > 0 else {}


def tolerations(options: ClusterOptions) -> list[dict[str, Any]]:
    return [{"key": t.key, "operator": "Exists" if t.value is None else "Equal",
             **({} if t.value is None else {"value": t.value}), "effect": t.effect}
            for t in options.tolerations]


def security_context(options: ClusterOptions) -> dict[str, Any]:
    """The pod's ``securityContext``: the notebook user's ids, so the run folder's files
    stay that user's."""
    if options.run_as is None:
        return {}
    uid, gid = options.run_as
    return {"runAsUser": uid, "runAsGroup": gid}


def placement(options: ClusterOptions) -> dict[str, Any]:
    """The pod spec's fields that say where it runs and as whom."""
    out: dict[str, Any] = {}
    if options.node_selector:
        out["nodeSelector"] = dict(options.node_selector)
    if options.tolerations:
        out["tolerations"] = tolerations(options)
    if options.run_as is not None:
        out["securityContext"] = security_context(options)
    return out
