"""Pulling the image to scan from the registry named in the scan request, over its /v2/ API.

The request's `Authorization` value is sent as given (a Bearer token, or Basic credentials);
when the registry answers 401 with a Bearer challenge, Basic credentials are exchanged for a
token at the challenge's realm, as Docker clients do. Manifests and configs are read bounded;
layers are streamed (scanner/layers.py checks their size and digest). The HTTP client comes
from the caller (Portlog hands one whose every connection passes its outbound guard).
"""

from __future__ import annotations

import hashlib
import re
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import quote

import httpx
import orjson

from scanner.layers import (
    IMAGE_MANIFESTS,
    INDEXES,
    Layer,
    config_descriptor,
    image_layers,
    media_type_of,
    parse_document,
    platform_manifest,
)
from scanner.limits import Deadline, ScanFailed, ScanLimits

MANIFEST_ACCEPT = ", ".join((*IMAGE_MANIFESTS, *INDEXES))
CHUNK = 1024 * 1024
TOKEN_ANSWER_BYTES = 64 * 1024
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryPull:
    def __init__(self, client: httpx.Client, url: str, authorization: str, repository: str, limits: ScanLimits,
                 deadline: Deadline) -> None:
        self.client, self.limits, self.deadline = client, limits, deadline
        self.base = f"{url.rstrip('/')}/v2/{quote(repository, safe='/')}"
        self.authorization = authorization

    def image(self, digest: str) -> tuple[dict, list[Layer]]:
        """The image manifest (an index's linux/amd64 image) and its layers with their diff ids."""
        manifest = self._manifest(digest)
        if media_type_of(manifest) in INDEXES or "manifests" in manifest:
            manifest = self._manifest(platform_manifest(manifest)["digest"])
        config_digest = config_descriptor(manifest)["digest"]
        config = parse_document(self._small(f"/blobs/{config_digest}", config_digest, "image config"),
                                "image config", self.limits)
        return manifest, image_layers(manifest, config)

    @contextmanager
    def open_blob(self, layer: Layer) -> Iterator[_BodyReader]:
        with self._stream(f"/blobs/{layer.digest}", "*/*") as response:
            yield _BodyReader(response.iter_raw(CHUNK))

    def _manifest(self, digest: str) -> dict:
        return parse_document(self._small(f"/manifests/{digest}", digest, "manifest", MANIFEST_ACCEPT), "manifest",
                              self.limits)

    def _small(self, path: str, digest: str, what: str, accept: str = "*/*") -> bytes:
        """A manifest or config, bounded, checked against its digest."""
        with self._stream(path, accept) as response:
            body, size = [], 0
            for chunk in response.iter_raw(CHUNK):
                size += len(chunk)
                if size > self.limits.manifest_bytes:
                    raise ScanFailed(f"the {what} is larger than the limit of {self.limits.manifest_bytes} bytes")
                body.append(chunk)
        data = b"".join(body)
        if digest.startswith("sha256:") and f"sha256:{hashlib.sha256(data).hexdigest()}" != digest:
            raise ScanFailed(f"the registry's {what} does not match its digest {digest}")
        return data

    @contextmanager
    def _stream(self, path: str, accept: str) -> Iterator[httpx.Response]:
        url = f"{self.base}{path}"
        for attempt in range(2):
            self.deadline.check()
            headers = {"Accept": accept, **({"Authorization": self.authorization} if self.authorization else {})}
            try:
                with self.client.stream("GET", url, headers=headers) as response:
                    if response.status_code == 401 and attempt == 0 and self._exchanged(response):
                        continue
                    if response.status_code != 200:
                        raise ScanFailed(f"the registry answered {response.status_code} to GET {url}")
                    yield response
                    return
            except httpx.HTTPError as error:
                raise ScanFailed(f"cannot read {url} from the registry: {error or type(error).__name__}") from None

    def _exchanged(self, response: httpx.Response) -> bool:
        """Trades Basic credentials for a Bearer token when the registry's challenge asks for one."""
        challenge = response.headers.get("WWW-Authenticate", "")
        if not challenge.lower().startswith("bearer ") or not self.authorization.lower().startswith("basic "):
            return False
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        if not params.get("realm", "").startswith(("http://", "https://")):
            return False
        query = {key: params[key] for key in ("service", "scope") if key in params}
        with self.client.stream("GET", params["realm"], params=query,
                                headers={"Authorization": self.authorization}) as answer:
            body = b""
            for chunk in answer.iter_raw(CHUNK):
                body += chunk
                if len(body) > TOKEN_ANSWER_BYTES:
                    raise ScanFailed("the registry's token service answered too much")
        try:
            document = orjson.loads(body) if answer.status_code == 200 else {}
        except orjson.JSONDecodeError:
            document = {}
        token = (document.get("token") or document.get("access_token")) if isinstance(document, dict) else None
        if not isinstance(token, str) or not token:
            raise ScanFailed(f"the registry's token service answered {answer.status_code} without a token")
        self.authorization = f"Bearer {token}"
        return True


class _BodyReader:
    """read(n) over an HTTP body's chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._offset = 0

    def read(self, size: int = CHUNK) -> bytes:
        while self._offset == len(self._buffer):
            try:
                self._buffer, self._offset = next(self._chunks), 0
            except StopIteration:
                return b""
            except httpx.HTTPError as error:
                raise ScanFailed(f"reading a layer from the registry failed: {error or type(error).__name__}") \
                    from None
        chunk = self._buffer[self._offset:self._offset + size]
        self._offset += len(chunk)
        return chunk

