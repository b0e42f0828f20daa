"""Where models are kept: an S3 bucket (``s3://bucket/prefix``) or a local folder (a path or
``file://``), behind one small interface so everything above it has one code path.

S3 uses boto3 with the standard AWS configuration (environment variables, profiles,
``AWS_ENDPOINT_URL`` for S3-compatible servers); big files go through boto3's transfer
manager (multipart, concurrent).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit
from urllib.request import url2pathname

from ..addresses import redacted
from ..errors import ChecksumError, StoreError
from ..files import copy_file, inside, write_bytes_file
from ..limits import ANSWER, TEXT
from ..progress import Progress, no_progress


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int


class Store(Protocol):
    uri: str

    def put_files(self, files: Iterable[tuple[Path, str]], *,
                  progress: Progress = no_progress) -> None:
        """Upload (local path, key) pairs; an object appears only once it is whole.
        ``progress`` advances by the bytes sent."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None: ...
    def get_bytes(self, key: str) -> bytes | None: ...
    def get_file(self, key: str, path: Path, *, progress: Progress = no_progress) -> None: ...
    def list(self, prefix: str) -> list[StoredObject]: ...
    def folders(self, prefix: str) -> list[str]: ...
    """The names one level below ``prefix`` (which ends in '/') that hold objects."""


def open_store(uri: str, *, create_bucket: bool = False) -> Store:
    """The store at ``uri``: ``s3://bucket[/prefix]``, ``file:///path`` or a path."""
    check_store_uri(uri)
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[5:].partition("/")
        return S3Store(bucket, prefix.strip("/"), create_bucket=create_bucket)
    if uri.startswith("file://"):  # as LocalStore.uri writes it: percent-encoded
        return LocalStore(Path(url2pathname(urlsplit(uri).path)))
    return LocalStore(Path(uri))


def check_store_uri(uri: str) -> None:
    """Refuse a store address ``open_store`` could not open, without opening it."""
    if not str(uri).strip():
        raise StoreError("no model store is given (an empty --store: is a variable unset?); "
                         "give s3://bucket/prefix or a folder")
    if uri != uri.strip():
        raise StoreError(f"the model store {uri!r} begins or ends with a space or a line "
                         "break; give it without them")
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[5:].partition("/")
        if not bucket:
            raise StoreError(f"{uri!r}: name a bucket, e.g. s3://my-bucket/models")
        if not _BUCKET.match(bucket) or ".." in bucket:
            raise StoreError(
                f"{uri!r}: {bucket!r} is not a valid S3 bucket name (3 to 63 lowercase "
                "letters, digits, dots and hyphens, starting and ending with a letter or "
                "digit), e.g. s3://my-bucket/models")
    elif "://" in uri and not uri.startswith("file://"):
        raise StoreError(f"{uri!r}: a model store is s3://bucket/prefix or a local folder")


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")


class LocalStore:
    """A folder; objects are files, written aside and renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = root.resolve().as_uri()  # file://...: versions in it are version URIs

    def _path(self, key: str) -> Path:
        return inside(self.root, key, what="the store's key", error=StoreError,
                      fix="a model store's files lie inside its folder")

    def put_files(self, files, *, progress: Progress = no_progress) -> None:
        for path, key in files:
            copy_file(path, self._path(key))
            progress.advance(path.stat().st_size)

    def put_bytes(self, key: str, data: bytes) -> None:
        write_bytes_file(self._path(key), data)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            TEXT.check(self._path(key).stat().st_size, f"{self.uri}/{key}")
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def get_file(self, key: str, path: Path, *, progress: Progress = no_progress) -> None:
        if not self._path(key).is_file():
            raise StoreError(f"{self._path(key)} is missing from the store")
        copy_file(self._path(key), path)
        progress.advance(path.stat().st_size)

    def list(self, prefix: str) -> list[StoredObject]:
        base = self._path(prefix)
        if not base.exists():
            return []
        return [StoredObject(p.relative_to(self.root).as_posix(), p.stat().st_size)
                for p in sorted(base.rglob("*")) if p.is_file() and not p.name.startswith(".")]

    def folders(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir()
                      if p.is_dir() and not p.name.startswith("."))


class S3Store:
    """A bucket and a key prefix on S3 or an S3-compatible server."""

    MULTIPART_THRESHOLD = 8 * 1024 * 1024
    CONCURRENCY = 10

    def __init__(self, bucket: str, prefix: str = "", *, create_bucket: bool = False) -> None:
        import boto3
        import botocore.session
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix
        self.uri = f"s3://{bucket}/{prefix}".rstrip("/")
        try:
            core = botocore.session.Session()
            session = boto3.session.Session(botocore_session=core)
            # Integrity is the manifest's job (SHA-256 of every file, checked on pull), so
            # no second checksum is computed per request.
            # Retries: 3 attempts unless the AWS configuration (AWS_MAX_ATTEMPTS, a
            # profile's max_attempts) says otherwise.
            configured = core.get_config_variable("max_attempts")
            self._client = session.client("s3", config=Config(
                retries={"max_attempts": int(configured or 3), "mode": "standard"},
                connect_timeout=ANSWER.value(), read_timeout=ANSWER.value(),
                max_pool_connections=2 * self.CONCURRENCY,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required"))
        except Exception as e:  # noqa: BLE001  (a missing profile, a bad endpoint URL)
            raise StoreError(f"cannot use {self.uri}: the AWS configuration is not usable "
                             f"({type(e).__name__}: {e})") from None
        self._check_bucket(create_bucket)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _check_bucket(self, create: bool) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except Exception as e:  # noqa: BLE001
            code = _code(e)
            if code in ("404", "NoSuchBucket") and create:
                try:
                    self._client.create_bucket(Bucket=self.bucket)
                    return
                except Exception as e2:  # noqa: BLE001
                    if _code(e2) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        try:  # another publish made it just now: ours if we can open it
                            self._client.head_bucket(Bucket=self.bucket)
                            return
                        except Exception:  # noqa: BLE001  (someone else's: said below)
                            pass
                    raise self._error(e2, f"create bucket {self.bucket!r}") from None
            raise self._error(e, f"open bucket {self.bucket!r}") from None

    def _error(self, e: Exception, doing: str) -> StoreError:
        """One sentence for what S3 answered; never the credentials."""
        code = _code(e)
        where = f"{self.uri} (endpoint {redacted(self._client.meta.endpoint_url)})"
        if code in ("404", "NoSuchBucket"):
            return StoreError(f"could not {doing}: the bucket does not exist at {where}; "
                              "create it, or pass --create-bucket")
        if code in ("403", "SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied",
                    "InvalidClientTokenId"):
            return StoreError(f"could not {doing}: {where} refused the credentials ({code}); "
                              "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the "
                              "AWS profile)")
        if code in ("InternalError", "500") and doing.startswith(("download", "read")):
            return ChecksumError(
                f"could not {doing} from {where}: the server could not read it back "
                f"({code}): the stored object is damaged; publish the run again")
        if code in ("InternalError", "500", "503", "ServiceUnavailable", "SlowDown"):
            return StoreError(
                f"could not {doing} at {where}: the server failed ({code}): it stopped, or "
                "its storage did; once it is back, run the same command again (what "
                "already reached it is not sent twice)")
        name = type(e).__name__
        if name in ("ConnectTimeoutError", "ReadTimeoutError"):
            return StoreError(f"could not {doing}: {where} did not answer within "
                              f"{ANSWER.units()} seconds; is it overloaded or stuck? Set "
                              f"{ANSWER.env} higher to wait longer")
        if name in ("EndpointConnectionError", "ConnectionClosedError") or \
                isinstance(e, OSError):
            return StoreError(f"could not {doing}: cannot reach {where}; is the server up "
                              "and AWS_ENDPOINT_URL right?")
        if name == "NoCredentialsError":
            return StoreError(f"could not {doing}: no AWS credentials; set "
                              "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE")
        return StoreError(f"could not {doing} at {where}: {code or name}")

    def put_files(self, files, *, progress: Progress = no_progress) -> None:
        from boto3.s3.transfer import (ProgressCallbackInvoker, TransferConfig,
                                       create_transfer_manager)

        sent = ProgressCallbackInvoker(progress.advance)
        config = TransferConfig(multipart_threshold=self.MULTIPART_THRESHOLD,
                                multipart_chunksize=self.MULTIPART_THRESHOLD,
                                max_concurrency=self.CONCURRENCY, use_threads=True)
        try:
            with create_transfer_manager(self._client, config) as manager:
                futures = [manager.upload(str(path), self.bucket, self._key(key),
                                          subscribers=[sent])
                           for path, key in files]
                for f in futures:
                    f.result()
        except StoreError:
            raise
        except Exception as e:  # noqa: BLE001
            raise self._error(e, "upload") from None

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except Exception as e:  # noqa: BLE001
            raise self._error(e, f"write {key}") from None

    def get_bytes(self, key: str) -> bytes | None:
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as e:  # noqa: BLE001
            if _code(e) in ("NoSuchKey", "404"):
                return None
            raise self._error(e, f"read {key}") from None
        with answer["Body"] as body:
            TEXT.check(int(answer.get("ContentLength") or 0), f"s3://{self.bucket}/"
                       f"{self._key(key)}")
            return body.read()

    def get_file(self, key: str, path: Path, *, progress: Progress = no_progress) -> None:
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(multipart_threshold=self.MULTIPART_THRESHOLD,
                                max_concurrency=self.CONCURRENCY)
        try:
            self._client.download_file(self.bucket, self._key(key), str(path), Config=config,
                                       Callback=progress.advance)
        except Exception as e:  # noqa: BLE001
            raise self._error(e, f"download {key}") from None

    def list(self, prefix: str) -> list[StoredObject]:
        out = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix))
            for page in pages:
                for obj in page.get("Contents", []):
                    key = obj["Key"][len(self.prefix) + 1:] if self.prefix else obj["Key"]
                    out.append(StoredObject(key, obj["Size"]))
        except Exception as e:  # noqa: BLE001
            raise self._error(e, f"list {prefix}") from None
        return out

    def folders(self, prefix: str) -> list[str]:
        out = []
        start = self._key(prefix)
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start, Delimiter="/")
            for page in pages:
                out += [p["Prefix"][len(start):].rstrip("/")
                        for p in page.get("CommonPrefixes", [])]
        except Exception as e:  # noqa: BLE001
            raise self._error(e, f"list {prefix}") from None
        return sorted(out)


def _code(e: Exception) -> str:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
