"""Where a filesystem blob store keeps things, under its root:

    <root>/
      blobs/<algorithm>/<first two hex>/<hex>   published blob and manifest bytes, immutable
      uploads/<upload id>                       bytes of an upload in flight
      uploads/<upload id>.json                  {"repository": ...}
      tmp/                                      small writes before their atomic rename

Tags and manifest links are not here: they live in the event log.
"""

from __future__ import annotations

import re
from pathlib import Path

UPLOAD_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def blob_path(root: Path, digest: str) -> Path:
    algorithm, encoded = digest.split(":", 1)
    return root / "blobs" / algorithm / encoded[:2] / encoded


def upload_paths(root: Path, upload_id: str) -> tuple[Path, Path] | None:
    """(data, info) of an upload; None for an id we could not have issued (never a path
    outside root). Two plain files, not a directory: fewer system calls per blob pushed."""
    if not UPLOAD_ID_RE.fullmatch(upload_id):
        return None
    data = root / "uploads" / upload_id
    return data, data.with_suffix(".json")


def tmp_dir(root: Path) -> Path:
    return root / "tmp"
