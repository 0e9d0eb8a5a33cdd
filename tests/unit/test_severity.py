"""Harbor's severities: their order, and reading them in any letter case."""

from __future__ import annotations

import pytest

from domain.errors import InvalidInputError
from domain.severity import SEVERITIES, parse_severity, severity_at_least


def test_the_order_is_harbors():
    assert SEVERITIES == ("Unknown", "None", "Low", "Medium", "High", "Critical")


@pytest.mark.parametrize("severity, threshold, expected", [
    ("Critical", "High", True), ("High", "High", True), ("Medium", "High", False),
    ("Low", "Low", True), ("None", "Low", False), ("Unknown", "Low", False),
    ("Unknown", "Unknown", True), ("None", "Unknown", True), ("Low", "Critical", False),
])
def test_at_least(severity, threshold, expected):
    assert severity_at_least(severity, threshold) is expected


@pytest.mark.parametrize("value, expected", [
    ("low", "Low"), ("LOW", "Low"), ("Low", "Low"), ("critical", "Critical"), ("none", "None"),
    ("unknown", "Unknown"), (" high ", "High"), ("mEdIuM", "Medium"),
])
def test_parse_any_case(value, expected):
    assert parse_severity(value) == expected


@pytest.mark.parametrize("value", ["", "severe", "negligible", None, 3, True, ["low"], "lowest"])
def test_parse_refuses_anything_else(value):
    with pytest.raises(InvalidInputError) as refused:
        parse_severity(value)
    assert "unknown severity" in refused.value.message and "critical" in refused.value.message
