"""Manifest parsing and structural validation (no I/O).

Accepts Docker schema2 manifests and manifest lists, OCI image manifests and
indexes, and OCI artifacts (an image manifest with any `artifactType` or
config media type). Schema1 is refused, as in Distribution's default setup.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson

from domain.errors import DigestInvalidError, ManifestInvalidError, ManifestTooLargeError
from domain.names import check_digest, parse_digest

MAX_MANIFEST_BYTES = 4 * 1024 * 1024

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
MANIFEST_TYPES = IMAGE_TYPES + INDEX_TYPES
# The config media types of container images (an image manifest with another config is an artifact).
IMAGE_CONFIG_TYPES = ("application/vnd.docker.container.image.v1+json", "application/vnd.oci.image.config.v1+json")
# Layers whose bytes may live elsewhere (`urls`), which a registry need not hold: the only
# descriptors that may carry `urls`, as in Distribution.
FOREIGN_LAYER_TYPES = (
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
)
MAX_DESCRIPTOR_SIZE = 2**63 - 1


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    foreign: bool = False  # a foreign layer with `urls`: the bytes live elsewhere, we need not hold them


@dataclass(frozen=True)
class ParsedManifest:
    digest: str
    media_type: str
    size: int
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def required_blobs(self) -> list[Descriptor]:
        blobs = [self.config] if self.config else []
        return blobs + [layer for layer in self.layers if not layer.foreign]


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def parse_manifest(data: bytes, content_type: str | None, expected_digest: str | None = None):
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestTooLargeError(
            f"manifest is larger than {MAX_MANIFEST_BYTES} bytes", {"size": len(data)}
        )
    digest = _digest_of(data, expected_digest)
    doc = _load_json(data)
    media_type = resolve_media_type(doc, content_type)
    if type(doc.get("schemaVersion")) is not int or doc["schemaVersion"] != 2:  # not 2.0, not true
        raise ManifestInvalidError("schemaVersion must be 2", {"schemaVersion": doc.get("schemaVersion")})
    common = dict(
        digest=digest,
        media_type=media_type,
        size=len(data),
        subject=_optional_descriptor(doc, "subject"),
        annotations=_annotations(doc.get("annotations"), "annotations"),
    )
    if media_type in INDEX_TYPES:
        return ParsedManifest(
            manifests=_descriptor_list(doc, "manifests"),
            artifact_type=_optional_str(doc, "artifactType"),
            **common,
        )
    config = _descriptor(doc.get("config"), "config")
    return ParsedManifest(
        config=config,
        layers=_descriptor_list(doc, "layers", layers=True),
        artifact_type=_optional_str(doc, "artifactType") or config.media_type,
        **common,
    )


def _digest_of(data: bytes, expected: str | None) -> str:
    if expected is None:
        return compute_digest(data)
    algorithm = parse_digest(expected).algorithm
    actual = compute_digest(data, algorithm)
    if actual != expected:
        raise DigestInvalidError(
            "manifest digest does not match the digest in the URL",
            {"expected": expected, "actual": actual},
        )
    return actual


def _load_json(data: bytes) -> dict:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise ManifestInvalidError("manifest is not valid JSON", {"reason": str(error)}) from None
    if not isinstance(doc, dict):
        raise ManifestInvalidError("manifest must be a JSON object")
    json.loads(data, object_pairs_hook=_refuse_duplicate_keys)  # orjson keeps the last silently
    return doc


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    """Two parsers reading one manifest must not see two different ones."""
    doc = dict(pairs)
    if len(doc) != len(pairs):
        duplicated = sorted(key for key, count in Counter(key for key, _ in pairs).items() if count > 1)
        raise ManifestInvalidError("manifest has duplicate keys", {"keys": duplicated[:10]})
    return doc


def resolve_media_type(doc: dict, content_type: str | None) -> str:
    """The body's `mediaType` wins; without one, the request Content-Type decides."""
    declared = doc.get("mediaType")
    header = (content_type or "").split(";")[0].strip().lower()
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalidError("mediaType must be a string")
    if declared in DOCKER_SCHEMA1 or header in DOCKER_SCHEMA1:
        raise ManifestInvalidError("Docker schema1 manifests are not supported; push schema2 or OCI")
    if declared:
        if header in MANIFEST_TYPES and header != declared:
            raise ManifestInvalidError(
                "Content-Type does not match the manifest's mediaType",
                {"content_type": header, "mediaType": declared},
            )
        media_type = declared
    elif header in MANIFEST_TYPES:
        media_type = header
    else:
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in MANIFEST_TYPES:
        raise ManifestInvalidError("unsupported manifest media type", {"mediaType": media_type})
    return media_type


def _descriptor(value: object, where: str, layer: bool = False) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestInvalidError(f"{where} must be a descriptor object")
    media_type, size = value.get("mediaType"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalidError(f"{where}.mediaType must be a non-empty string")
    if type(size) is not int or not 0 <= size <= MAX_DESCRIPTOR_SIZE:
        raise ManifestInvalidError(f"{where}.size must be a non-negative integer")
    digest = value.get("digest")
    if not isinstance(digest, str):
        raise ManifestInvalidError(f"{where}.digest must be a string")
    try:
        digest = check_digest(digest)
    except DigestInvalidError as error:
        raise ManifestInvalidError(f"{where}.digest: {error.message}", error.detail) from None
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        artifact_type=_optional_str(value, "artifactType"),
        annotations=_annotations(value.get("annotations"), f"{where}.annotations") or None,
        foreign=_foreign(value, where, layer and media_type in FOREIGN_LAYER_TYPES),
    )


def _foreign(value: dict, where: str, may_be_foreign: bool) -> bool:
    """Whether the descriptor is a foreign layer: one of FOREIGN_LAYER_TYPES with http(s) `urls`,
    whose bytes the registry need not hold. `urls` anywhere else is refused (a registry that
    skipped the blob check for them would accept a manifest whose layers it cannot serve)."""
    urls = value.get("urls")
    if urls is None:
        return False
    if not may_be_foreign:
        raise ManifestInvalidError(f"{where}.urls is allowed only on foreign (non-distributable) layers",
                                   {"mediaType": value.get("mediaType"), "allowed": list(FOREIGN_LAYER_TYPES)})
    if not isinstance(urls, list) or not all(isinstance(url, str) and _is_http_url(url) for url in urls):
        raise ManifestInvalidError(f"{where}.urls must be a list of http(s) URLs")
    return bool(urls)


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.fragment


def _optional_descriptor(doc: dict, key: str) -> Descriptor | None:
    return None if doc.get(key) is None else _descriptor(doc[key], key)


def _descriptor_list(doc: dict, key: str, layers: bool = False) -> tuple[Descriptor, ...]:
    items = doc.get(key, [])
    if not isinstance(items, list):
        raise ManifestInvalidError(f"{key} must be an array")
    return tuple(_descriptor(item, f"{key}[{i}]", layers) for i, item in enumerate(items))


def _optional_str(doc: dict, key: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise ManifestInvalidError(f"{key} must be a string")
    return value or None


def _annotations(value: object, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ManifestInvalidError(f"{where} must be an object of strings")
    return value
