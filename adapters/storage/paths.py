"""Where a filesystem blob store keeps things, under its root:

    <root>/
      blobs/<algorithm>/<first two hex>/<hex>   published blob and manifest bytes, immutable
      uploads/<upload id>/data                  bytes of an upload in flight
      uploads/<upload id>/info.json             {"repository": ...}
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


def upload_dir(root: Path, upload_id: str) -> Path | None:
    """None for an id that is not one we could have issued (never a path outside root)."""
    if not UPLOAD_ID_RE.fullmatch(upload_id):
        return None
    return root / "uploads" / upload_id


def tmp_dir(root: Path) -> Path:
    return root / "tmp"
