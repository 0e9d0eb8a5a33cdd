"""The grammar of the as-of view's names: `as-of/<moment>/<repository>`, the moment a UTC time
in basic ISO 8601 (lower case) or a log position."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from domain.as_of import as_of_name, parse_moment, split_as_of_name
from domain.errors import NameInvalidError
from domain.names import check_name


@pytest.mark.parametrize("text, expected", [
    ("20261207t201500z", datetime(2026, 12, 7, 20, 15, 0, tzinfo=timezone.utc)),
    ("20261207t201500.25z", datetime(2026, 12, 7, 20, 15, 0, 250000, tzinfo=timezone.utc)),
    ("20240229t235959.000001z", datetime(2024, 2, 29, 23, 59, 59, 1, tzinfo=timezone.utc)),
])
def test_times(text, expected):
    moment = parse_moment(text)
    assert (moment.time, moment.position, moment.text) == (expected, None, text)


def test_positions():
    assert parse_moment("p0").position == 0
    assert parse_moment("p48213").position == 48213


@pytest.mark.parametrize("text", ["20250229t000000z", "20261207t246000z", "20261207t201500", "2026-12-07t201500z",
                                  "20261207t201500.z", "p", "p1.5", "pp1", "", "now"])
def test_anything_else_is_an_invalid_name(text):
    with pytest.raises(NameInvalidError):
        parse_moment(text)


def test_names_of_the_view():
    name = as_of_name("20261207t201500.250z", "library/app")
    assert check_name(name) == "as-of/20261207t201500.250z/library/app"  # fits the OCI name grammar
    moment, repository = split_as_of_name(name)
    assert (moment.position, repository) == (None, "library/app")
    assert split_as_of_name("team/as-of/app") is None and split_as_of_name("as-often/app") is None
    for broken in ("as-of", "as-of/p1", "as-of/p1/", "as-of/later/app"):
        with pytest.raises(NameInvalidError):
            split_as_of_name(broken)
