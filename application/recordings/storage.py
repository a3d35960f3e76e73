"""The recordings' bucket, through boto3 (any S3-compatible server: AWS S3, MinIO, moto).

One ``ObjectStore`` per process; boto3 clients are thread-safe. Timeouts and
retries are short and bounded: an upload that cannot reach the server fails
fast and the uploader retries the file later with back-off (the file stays on
disk meanwhile); a download answers 503 rather than hang the request.

Every object carries its SHA-256 in its metadata (``x-amz-meta-sha256``), so an
upload interrupted by a crash after the PUT is recognised at the next start and
not sent twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from application.recordings.settings import RecordingSettings

log = logging.getLogger(__name__)


def _quiet_sdk() -> None:
    """botocore's DEBUG log prints every signed request's headers, whose
    Authorization names the access key id: keep the SDK's loggers at INFO or above
    whatever the process's level (a test at DEBUG found it)."""
    for name in ("botocore", "boto3", "s3transfer"):
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:  # NOTSET too: it would follow the root down
            logger.setLevel(logging.INFO)


_quiet_sdk()

# What a failed storage call raises: the network (BotoCoreError: endpoint not
# reachable, timeouts) or the server's answer (ClientError: 403, 5xx, ...).
StorageError = (BotoCoreError, ClientError)
CHUNK_BYTES = 64 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True)
class StoredObject:
    key: str
    size_bytes: int
    last_modified: datetime


class ObjectStore:
    """The bucket: put a file, read, presign, list and delete objects."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @classmethod
    def from_settings(cls, settings: RecordingSettings) -> ObjectStore:
        _quiet_sdk()  # again: logging may have been configured since the import
        key_id, secret = settings.s3_access_key_id, settings.s3_secret_access_key
        config = Config(
            region_name=settings.s3_region, signature_version="s3v4", connect_timeout=3,
            read_timeout=20,
            retries={"max_attempts": 2, "mode": "standard"},
            s3={"addressing_style": "path" if settings.s3_path_style else "auto"})
        client = boto3.session.Session().client(
            "s3", endpoint_url=settings.s3_endpoint_url, config=config,
            aws_access_key_id=key_id.get_secret_value() if key_id else None,
            aws_secret_access_key=secret.get_secret_value() if secret else None)
        return cls(client, settings.s3_bucket)

    def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (dev and tests; production provisions it)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if _code(error) not in _MISSING:
                raise
            self.client.create_bucket(Bucket=self.bucket)
            log.info("created bucket %s", self.bucket)

    def holds(self, key: str, sha256: str) -> bool:
        """Whether ``key`` is there already with this content (its recorded SHA-256)."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in _MISSING:
                return False
            raise
        return bool(head.get("Metadata", {}).get("sha256") == sha256)

    def put(self, key: str, path: Path, sha256: str) -> None:
        with path.open("rb") as body:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body,
                                   ContentType="audio/wav", Metadata={"sha256": sha256})

    def read(self, key: str) -> tuple[int, Iterator[bytes]] | None:
        """The object's size and its bytes in chunks, or None if it is not there."""
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise
        body = got["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(CHUNK_BYTES)
            finally:
                body.close()
        return int(got["ContentLength"]), chunks()

    def presign(self, key: str, expires_s: int) -> str:
        """A URL that reads ``key`` without credentials for ``expires_s`` seconds."""
        return str(self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s))

    def objects(self, prefix: str = "") -> Iterator[StoredObject]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                yield StoredObject(item["Key"], int(item["Size"]), item["LastModified"])

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
