"""Harbor's vulnerability severities, in order: the words of its vulnerability reports, of a
project's `severity` setting and of the scan summaries (Unknown < None < Low < Medium < High <
Critical)."""

from __future__ import annotations

from domain.errors import InvalidInputError

SEVERITIES = ("Unknown", "None", "Low", "Medium", "High", "Critical")
_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
_BY_LOWER = {severity.lower(): severity for severity in SEVERITIES}


def severity_at_least(severity: str, threshold: str) -> bool:
    """Whether `severity` is `threshold` or graver (both Harbor severities)."""
    return _RANK[severity] >= _RANK[threshold]


def parse_severity(value: object) -> str:
    """A Harbor severity from any letter case ("low" -> "Low"); InvalidInputError otherwise."""
    severity = _BY_LOWER.get(value.strip().lower()) if isinstance(value, str) else None
    if severity is None:
        raise InvalidInputError(f"unknown severity {value!r}; one of {', '.join(s.lower() for s in SEVERITIES)}",
                                {"severity": value})
    return severity
