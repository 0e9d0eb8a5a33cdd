"""A remote registry as one end of a copy (domain/transfer.py Side), over RegistryClient."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

from adapters.registry_client import RegistryClient, RegistryClientError


class RemoteSide:
    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    def manifest(self, name: str, reference: str) -> tuple[bytes, str, str] | None:
        try:
            found = self.client.manifest(name, reference)
        except RegistryClientError as error:
            if error.status == 404:
                return None
            raise
        return found.data, found.media_type, found.digest

    def manifest_digest(self, name: str, reference: str) -> str | None:
        return self.client.manifest_digest(name, reference)

    def put_manifest(self, name: str, reference: str, data: bytes, media_type: str) -> str:
        return self.client.put_manifest(name, reference, data, media_type)

    def blob_exists(self, name: str, digest: str) -> bool:
        return self.client.blob_exists(name, digest)

    @contextmanager
    def open_blob(self, name: str, digest: str) -> Iterator[tuple[int, Iterable[bytes]]]:
        with self.client.open_blob(name, digest) as stream:
            if stream.size is None:
                raise RegistryClientError(f"{name}@{digest}: the registry did not say the blob's size")
            yield stream.size, stream

    def push_blob(self, name: str, digest: str, size: int, chunks: Iterable[bytes]) -> None:
        self.client.push_blob(name, digest, size, chunks)

    def mount_blob(self, name: str, digest: str, from_name: str) -> bool:
        return bool(self.client.mount_blob(name, digest, from_name))

    def delete_manifest(self, name: str, digest: str) -> None:
        self.client.delete_manifest(name, digest)

    def referrers(self, name: str, digest: str) -> list[str]:
        return self.client.referrers(name, digest)

    def catalog(self) -> list[str]:
        return self.client.catalog()

    def tags(self, name: str) -> list[str]:
        return self.client.tags(name)
