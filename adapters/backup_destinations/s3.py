"""A backup in an S3 bucket, under an optional prefix, through the minio SDK:
`s3://ACCESS:SECRET@HOST:PORT/BUCKET[/PREFIX]?secure=false&region=…` (the form of
PORTLOG_STORAGE_URL, plus the prefix). An object is visible only once whole, so a file is there
whole or not at all. Large files go up in 8 MiB parts (one part in memory at a time).

A server named through the API is a user-supplied address: it is reached through the outbound
guard (adapters/outbound.py); one named on the command line is the operator's own.
"""

from __future__ import annotations

import io
import os
import re
from typing import BinaryIO, Iterator
from urllib.parse import parse_qsl, unquote, urlsplit

import certifi
import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error

from adapters.outbound import OutboundGuard
from domain.errors import InvalidInputError

PART_SIZE = 8 * 1024 * 1024
CONNECT_TIMEOUT, READ_TIMEOUT = 5.0, 60.0
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_FORM = "s3://ACCESS:SECRET@HOST:PORT/BUCKET[/PREFIX]?secure=false"


class S3Destination:
    def __init__(self, endpoint: str, bucket: str, prefix: str, access_key: str, secret_key: str, *,
                 secure: bool = True, region: str | None = None, outbound: OutboundGuard | None = None) -> None:
        self.endpoint, self.bucket, self.prefix, self.secure = endpoint, bucket, prefix, secure
        options = dict(timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
                       cert_reqs="CERT_REQUIRED", ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
                       retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)))
        http = outbound.urllib3_pool_manager(**options) if outbound else urllib3.PoolManager(**options)
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                            region=region or "us-east-1", http_client=http)
        self._bucket_checked = False

    @classmethod
    def from_url(cls, url: str, outbound: OutboundGuard | None = None) -> S3Destination:
        parts = urlsplit(url)
        if not parts.username or not parts.password or not parts.hostname:
            raise InvalidInputError(f"an S3 backup destination is {_FORM}", {"field": "destination"})
        bucket, _, prefix = parts.path.strip("/").partition("/")
        if not _BUCKET.fullmatch(bucket):
            raise InvalidInputError(f"no bucket name in the destination: {_FORM}", {"field": "destination"})
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        if set(options) - {"secure", "region"}:
            raise InvalidInputError("an S3 destination takes the query parameters secure and region",
                                    {"field": "destination"})
        secure = options.get("secure", "true").lower() not in ("false", "0", "no")
        try:
            parts.port  # noqa: B018 (validates it)
        except ValueError:
            raise InvalidInputError("the destination's port is not a number", {"field": "destination"}) from None
        return cls(parts.netloc.rpartition("@")[2], bucket, prefix.strip("/"), unquote(parts.username),
                   unquote(parts.password), secure=secure, region=options.get("region") or None, outbound=outbound)

    def describe(self) -> str:
        path = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket
        return f"s3://{self.endpoint}/{path}{'' if self.secure else '?secure=false'}"

    def size(self, name: str) -> int | None:
        try:
            return self.client.stat_object(self._ready(), self._key(name)).size
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                return None
            raise

    def open(self, name: str) -> BinaryIO:
        try:
            return _Reader(self.client.get_object(self._ready(), self._key(name)))
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                raise FileNotFoundError(name) from None
            raise

    def write(self, name: str, stream: BinaryIO, size: int) -> None:
        self.client.put_object(self._ready(create=True), self._key(name), stream, size, part_size=PART_SIZE)

    def write_bytes(self, name: str, data: bytes) -> None:
        self.write(name, io.BytesIO(data), len(data))

    def flush(self) -> None:
        pass  # an object is durable once its PUT answered

    def delete(self, names: list[str]) -> None:
        for start in range(0, len(names), 1000):
            objects = [DeleteObject(self._key(name)) for name in names[start:start + 1000]]
            for error in self.client.remove_objects(self._ready(), objects):
                raise MinioException(f"could not delete {error.name}: {error.code}")

    def names(self) -> Iterator[str]:
        if not self.client.bucket_exists(self.bucket):
            return
        base = f"{self.prefix}/" if self.prefix else ""
        for item in self.client.list_objects(self.bucket, prefix=base, recursive=True):
            yield item.object_name[len(base):]

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _ready(self, create: bool = False) -> str:
        if create and not self._bucket_checked:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
            self._bucket_checked = True
        return self.bucket


class _Reader(io.RawIOBase):
    """An S3 object's body as a file-like stream; closing it returns the connection."""

    def __init__(self, response) -> None:
        self.response = response

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.response.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.response.close()
            self.response.release_conn()
        super().close()
