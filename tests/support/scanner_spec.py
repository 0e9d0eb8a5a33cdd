"""The Harbor Scanner Adapter spec's JSON schemas (tests/data/scanner-spec, from
goharbor/pluggable-scanner-spec v1.2), to check the built-in adapter's answers against."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator

SCHEMAS = json.loads((Path(__file__).resolve().parents[1] / "data" / "scanner-spec" /
                      "scanner-adapter-v1.2.schema.json").read_text())


def spec_errors(instance, definition: str) -> list[str]:
    """What in `instance` does not follow the spec's `definition` (formats checked too); [] when it does."""
    schema = {**SCHEMAS, "$ref": f"#/$defs/{definition}"}
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(instance)]
