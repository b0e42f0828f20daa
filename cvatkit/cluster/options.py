"""Where and how cvatkit's pods run on a cluster: the image, the shared claim and where it
is mounted, the nodes, the Secrets that hold credentials. Checked when made, so a mistake
is named before any manifest is written."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..addresses import has_credentials
from ..errors import UsageError

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\Z")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\Z")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
MAX_ID = 2**31 - 1
"""The largest user or group id a pod's securityContext takes."""
SECRET_NAME = re.compile(
    r"SECRET|PASSW|PASSPHRASE|(^|_)(PASS|PW|PWD)$|TOKEN|CREDENTIAL|(^|_)AUTH|COOKIE|"
    r"SESSION|(API|ACCESS|PRIVATE|CLIENT|SIGNING|ENCRYPTION|MASTER|LICEN[CS]E)_?KEY|"
    r"(^|_)KEY$|(^|_)DSN$")
"""Environment names that look like they hold credentials: these come from Secrets
(``--s3-secret``, ``--cvat-secret``, ``--secret-env``), never from ``--env``. (``PWD``
alone is the working folder.)"""


@dataclass(frozen=True, kw_only=True)
class Toleration:
    """A pod's tolerance of a node taint, as ``kubectl taint`` writes it: key=value:Effect
    (operator Equal) or key:Effect (operator Exists)."""

    key: str
    value: str | None
    """None: any value (operator Exists)."""
    effect: str


@dataclass(frozen=True, kw_only=True)
class ClusterOptions:
    """How the pods of a cluster run are made."""

    image: str
    """The cvatkit image (built from the repository's Dockerfile), e.g. registry/cvatkit:0.1."""
    claim: str
    """The PersistentVolumeClaim (ReadWriteMany) that holds the work: datasets and runs."""
    mount_path: str
    """Where the claim is mounted, in the pods and where the manifest is rendered (a
    JupyterHub server mounting the same claim): paths in run.json are valid in both."""
    namespace: str | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    s3_secret: str | None = None
    """A Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and optionally
    AWS_ENDPOINT_URL, AWS_DEFAULT_REGION)."""
    cvat_secret: str | None = None
    """A Secret with CVAT_HOST and CVAT_ACCESS_TOKEN, or CVAT_USER and CVAT_PASSWORD."""
    env: tuple[tuple[str, str], ...] = ()
    """Plain settings for the pods (CVATKIT_VERBOSE=1, ...): never credentials."""
    secret_env: tuple[tuple[str, str, str], ...] = ()
    """(variable, Secret, key): a variable of the pods set from a key of a Secret."""
    run_as: tuple[int, int] | None = None
    """The user and group id the pods run as, so files they write on the claim belong to
    the notebook's user; None: the image's user."""

    def __post_init__(self) -> None:
        if not self.image or any(c.isspace() for c in self.image):
            raise UsageError(f"--image {self.image!r} is not an image name; give the cvatkit "
                             "image built from the repository's Dockerfile, e.g. "
                             "registry.example.com/cvatkit:0.1.0")
        if not self.claim:
            raise UsageError("give --claim NAME: the PersistentVolumeClaim (ReadWriteMany) "
                             "that holds the datasets and runs, shared with JupyterHub")
        _check_name("--claim", self.claim, _DNS_SUBDOMAIN)
        mount = PurePosixPath(self.mount_path or "")
        if not mount.is_absolute() or mount == PurePosixPath("/") or ".." in mount.parts:
            raise UsageError(
                f"--mount-path {self.mount_path!r} must be an absolute folder other than /: "
                f"where the claim {self.claim} is mounted here (e.g. /home/jovyan/work), "
                "which is where the pods mount it too")
        if self.namespace is not None:
            _check_name("--namespace", self.namespace, _DNS_LABEL)
        for option, name in (("--s3-secret", self.s3_secret),
                             ("--cvat-secret", self.cvat_secret)):
            if name is not None:
                _check_name(option, name, _DNS_SUBDOMAIN)
        for key, value in self.node_selector.items():
            _check_label("--node-selector", key, value)
        for name, value in self.env:
            check_env_name(name, value)
        for name, secret, key in self.secret_env:
            parse_secret_env([f"{name}={secret}:{key}"])
        if self.run_as is not None and not all(0 <= i <= MAX_ID for i in self.run_as):
            raise UsageError(f"--run-as {self.run_as[0]}:{self.run_as[1]}: user and group "
                             f"ids are 0 to {MAX_ID}, as Kubernetes takes them")

    @property
    def mount(self) -> PurePosixPath:
        return PurePosixPath(os.path.normpath(self.mount_path))

    def require_on_claim(self, path: str | os.PathLike[str], what: str) -> str:
        """``path`` made absolute, refused unless it lies under the mount path: the pods
        only see the claim."""
        absolute = PurePosixPath(os.path.abspath(path))
        if absolute != self.mount and self.mount not in absolute.parents:
            raise UsageError(
                f"{what} {absolute} is not under --mount-path {self.mount}, so the pods "
                f"cannot see it: put it on the claim {self.claim} (mounted here at "
                f"{self.mount}), or give the --mount-path where the claim is mounted")
        return str(absolute)


def parse_node_selector(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``--node-selector key=value`` options as a dict."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--node-selector {item!r}: write it as key=value, e.g. "
                             "nvidia.com/gpu.present=true")
        _check_label("--node-selector", key, value)
        out[key] = value
    return out


def parse_toleration(text: str) -> Toleration:
    """``--toleration key=value:Effect`` (or ``key:Effect`` for any value)."""
    head, sep, effect = text.rpartition(":")
    if not sep or effect not in EFFECTS:
        raise UsageError(f"--toleration {text!r}: write it as key=value:Effect or key:Effect, "
                         f"the Effect one of {', '.join(EFFECTS)} (as `kubectl taint` "
                         "writes a taint)")
    key, eq, value = head.partition("=")
    _check_label("--toleration", key, value if eq else "")
    return Toleration(key=key, value=value if eq else None, effect=effect)


def parse_env(items: list[str] | tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``--env NAME=VALUE`` options: plain settings, never credentials."""
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--env {item!r}: write it as NAME=VALUE, e.g. CVATKIT_VERBOSE=1")
        check_env_name(name)
        out.append((name, value))
    return tuple(out)


def parse_run_as(text: str) -> tuple[int, int]:
    """``--run-as UID[:GID]`` (GID defaults to UID)."""
    uid, _sep, gid = text.partition(":")
    try:
        return int(uid), int(gid or uid)
    except ValueError:
        raise UsageError(f"--run-as {text!r}: give numeric ids, UID or UID:GID (`id -u` and "
                         "`id -g` in the notebook's terminal say which)") from None


def check_env_name(name: str, value: str = "") -> None:
    """A plain setting's name and value: refused when either looks like a credential (a
    password in an address included), with the way to give it from a Secret."""
    if not _ENV_NAME.match(name):
        raise UsageError(f"--env {name!r} is not an environment variable name")
    if SECRET_NAME.search(name.upper()) and name != "PWD" or has_credentials(value):
        why = "its value holds an address with a user or password" if \
            has_credentials(value) else "its name says it holds a credential"
        raise UsageError(
            f"--env {name}: {why}, and credentials never go into a manifest in plain "
            f"text; put it in a Kubernetes Secret (kubectl create secret generic NAME "
            f"--from-env-file=FILE) and give it as --secret-env {name}=SECRET:KEY (or use "
            "--s3-secret / --cvat-secret)")


def parse_secret_env(items: list[str] | tuple[str, ...]) -> tuple[tuple[str, str, str], ...]:
    """``--secret-env NAME=SECRET:KEY`` options: a variable set from a key of a Secret."""
    out = []
    for item in items:
        name, eq, ref = item.partition("=")
        secret, colon, key = ref.partition(":")
        if not (eq and colon and name and secret and key):
            raise UsageError(f"--secret-env {item!r}: write it as NAME=SECRET:KEY, e.g. "
                             "WANDB_API_KEY=cvatkit-extra:WANDB_API_KEY")
        if not _ENV_NAME.match(name):
            raise UsageError(f"--secret-env {name!r} is not an environment variable name")
        _check_name("--secret-env", secret, _DNS_SUBDOMAIN)
        if not re.fullmatch(r"[-._A-Za-z0-9]+", key) or len(key) > 253:
            raise UsageError(f"--secret-env {item!r}: {key!r} is not a key a Secret can "
                             "hold (letters, digits, '-', '_' and '.')")
        out.append((name, secret, key))
    return tuple(out)


def _check_name(option: str, name: str, pattern: re.Pattern[str]) -> None:
    if len(name) > (63 if pattern is _DNS_LABEL else 253) or not pattern.match(name):
        raise UsageError(f"{option} {name!r} is not a Kubernetes name: lower-case letters, "
                         "digits and '-', starting and ending with a letter or digit")


def _check_label(option: str, key: str, value: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if ((slash and not _DNS_SUBDOMAIN.match(prefix)) or len(name) > 63
            or not _LABEL_NAME.match(name)):
        raise UsageError(f"{option} key {key!r} is not a label key: [prefix/]name, the name "
                         "letters, digits, '-', '_' and '.', at most 63 characters")
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise UsageError(f"{option} value {value!r} of {key} is not a label value: letters, "
                         "digits, '-', '_' and '.', at most 63 characters")
