"""The s3 prompt store: one immutable JSON object per version in any S3-compatible bucket.

Object key ``{S3_PREFIX}{workspace_id}/{name}/{version}.json`` (upstream had no workspace in the key,
so two tenants' versions collided). Writes are create-only: a conditional ``PutObject``
(``If-None-Match: *``) lets the store itself refuse to replace an object, so concurrent writers on
different nodes cannot overwrite each other. AWS S3 honours it since August 2024; an S3-compatible
store that silently ignores the header would let a racing writer replace an object.
"""

from __future__ import annotations

import threading
import time
from functools import cache
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from registry.storage import StoredContent, StoredDifferently, StoredVersion, StoreError

CONTENT_TYPE = "application/json"
LIST_PAGE_SIZE = 1000  # S3's maximum keys per ListObjectsV2 page

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_ALREADY_EXISTS = {"PreconditionFailed", "412"}
# AWS answers 409 when another conditional write of the same key is in flight; it asks for a retry.
_WRITE_CONFLICT = {"ConditionalRequestConflict", "409"}
_PUT_ATTEMPTS = 3
_AUTHOR_MAX = 128  # user metadata is limited to 2 KB in total; percent-encoding can grow a char 12x
# Metadata travels in HTTP headers: keep printable ASCII readable and percent-encode the rest (and
# "%" itself, so that urllib.parse.unquote() restores the author exactly).
_AUTHOR_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


# Loading botocore's data files costs ~0.2 s per session, so every store shares one; creating clients
# from a session is not thread-safe, hence the lock.
_session_lock = threading.Lock()


@cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _check_component(label: str, value: str) -> None:
    # Names and versions are validated upstream of the store; this is defence in depth so that no
    # caller can address another workspace's objects or escape the prefix.
    if not value or "/" in value or "\\" in value or ".." in value or value == ".":
        raise ValueError(f"invalid {label} for an S3 object key: {value!r}")


def _client_config(*, path_style: bool, connect_timeout: float, read_timeout: float, attempts: int) -> Config:
    return Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"max_attempts": attempts, "mode": "standard"},
        s3={"addressing_style": "path"} if path_style else None,
        # boto3 >= 1.36 adds CRC checksums to every upload by default, which several S3-compatible
        # stores reject; send them only where the API requires one.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


class S3Store:
    driver = "s3"

    def __init__(
        self,
        client: Any,
        *,
        bucket: str,
        prefix: str = "prompts/",
        probe_client: Any = None,
    ) -> None:
        self._client = client
        # Health probes use a client without retries so /health/deep answers fast when S3 is down.
        self._probe = probe_client or client
        self.bucket = bucket
        self.prefix = prefix

    @classmethod
    def from_settings(cls) -> S3Store:
        endpoint = settings.S3_ENDPOINT or None
        path_style = endpoint is not None
        credentials = {
            # None falls back to boto3's default chain (environment, profile, instance role).
            "aws_access_key_id": settings.S3_ACCESS_KEY or None,
            "aws_secret_access_key": settings.S3_SECRET_KEY or None,
            "region_name": settings.S3_REGION or "us-east-1",
            "endpoint_url": endpoint,
        }
        with _session_lock:
            session = _session()
            client = session.client(
                "s3",
                config=_client_config(path_style=path_style, connect_timeout=3, read_timeout=10, attempts=3),
                **credentials,
            )
            probe = session.client(
                "s3",
                config=_client_config(path_style=path_style, connect_timeout=2, read_timeout=3, attempts=1),
                **credentials,
            )
        return cls(client, probe_client=probe, bucket=settings.S3_BUCKET, prefix=settings.S3_PREFIX)

    def key(self, *, workspace_id: str, name: str, version: str) -> str:
        _check_component("workspace", workspace_id)
        _check_component("prompt name", name)
        _check_component("version", version)
        return f"{self.prefix}{workspace_id}/{name}/{version}.json"

    def put(
        self, *, workspace_id: str, name: str, version: str, content: bytes, author: str
    ) -> StoredVersion:
        key = self.key(workspace_id=workspace_id, name=name, version=version)
        metadata = {"author": quote(author[:_AUTHOR_MAX], safe=_AUTHOR_SAFE)}
        for attempt in range(_PUT_ATTEMPTS):
            try:
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=content,
                    ContentType=CONTENT_TYPE,
                    Metadata=metadata,
                    IfNoneMatch="*",
                )
                return StoredVersion()
            except ClientError as exc:
                code = _error_code(exc)
                if code not in _ALREADY_EXISTS | _WRITE_CONFLICT:
                    raise StoreError(f"S3 put of s3://{self.bucket}/{key} failed: {exc}") from exc
            except BotoCoreError as exc:
                raise StoreError(f"S3 put of s3://{self.bucket}/{key} failed: {exc}") from exc
            existing = self._read(key)
            if existing is None:
                # A conflicting write that has not landed (409), or an object deleted since: try again.
                time.sleep(0.05 * (attempt + 1))
                continue
            if existing == content:
                return StoredVersion()
            raise StoredDifferently(
                f"{workspace_id}/{name}@{version} is already stored in S3 with other content"
            )
        raise StoreError(f"S3 put of s3://{self.bucket}/{key} kept conflicting with another writer")

    def get(self, *, workspace_id: str, name: str, version: str) -> StoredContent | None:
        content = self._read(self.key(workspace_id=workspace_id, name=name, version=version))
        return None if content is None else StoredContent(content, StoredVersion())

    def versions(self, workspace_id: str, *, page_size: int = LIST_PAGE_SIZE) -> list[tuple[str, str]]:
        """Every stored (name, version) of a workspace, following continuation tokens to the end."""
        _check_component("workspace", workspace_id)
        base = f"{self.prefix}{workspace_id}/"
        found: list[tuple[str, str]] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base, PaginationConfig={"PageSize": page_size}
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    name, sep, filename = obj["Key"][len(base) :].partition("/")
                    # Objects not written by this driver (other layouts, stray files) are not versions.
                    if sep and filename.endswith(".json") and "/" not in filename and len(filename) > 5:
                        found.append((name, filename[: -len(".json")]))
        except ClientError as exc:
            raise StoreError(f"S3 listing of s3://{self.bucket}/{base} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"S3 listing of s3://{self.bucket}/{base} failed: {exc}") from exc
        return found

    def healthy(self) -> bool:
        try:
            self._probe.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError):
            return False
        return True

    def describe(self) -> dict[str, str]:
        endpoint = urlsplit(str(self._client.meta.endpoint_url))
        # Never show credentials, even if someone put them into the endpoint URL.
        host = endpoint.hostname or ""
        netloc = f"{host}:{endpoint.port}" if endpoint.port else host
        return {
            "driver": self.driver,
            "location": f"s3://{self.bucket}/{self.prefix}",
            "endpoint": urlunsplit(endpoint._replace(netloc=netloc)),
            "region": str(self._client.meta.region_name or ""),
        }

    def _read(self, key: str) -> bytes | None:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            return response["Body"].read()
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                return None
            raise StoreError(f"S3 get of s3://{self.bucket}/{key} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"S3 get of s3://{self.bucket}/{key} failed: {exc}") from exc
