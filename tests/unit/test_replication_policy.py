"""Replication policy settings: validation, filters and where names land at the destination."""

from __future__ import annotations

import pytest

from domain.errors import InvalidInputError
from domain.replication import Filter, PolicySettings


def push_to(peer: str = "peer", **fields) -> PolicySettings:
    return PolicySettings(source=None, destination=peer, **fields).checked()


@pytest.mark.parametrize(("flatten", "namespace", "expected"), [
    (-1, "", "team/a/b/app"), (-1, "prod", "prod/a/b/app"), (0, "prod", "prod/app"),
    (1, "", "team/b/app"), (2, "mirror", "mirror/app"), (9, "", "team/app"),
])
def test_destination_names(flatten, namespace, expected):
    assert push_to(flatten=flatten, destination_namespace=namespace).destination_name("team/a/b/app") == expected


def test_filters_select_repositories_and_tags():
    policy = push_to(filters=(Filter("name", "team/**"), Filter("tag", "v*"), Filter("tag", "*-rc*", excluding=True)))
    assert policy.selects_repository("team/app") and not policy.selects_repository("other/app")
    assert policy.selects_tag("v1.2") and not policy.selects_tag("v1.2-rc1") and not policy.selects_tag("latest")


@pytest.mark.parametrize("settings", [
    PolicySettings(source=None, destination=None), PolicySettings(source="a", destination="b"),
    PolicySettings(source=None, destination="p", trigger="hourly"),
    PolicySettings(source=None, destination="p", trigger="scheduled"),
    PolicySettings(source="p", destination=None, trigger="event_based"),
    PolicySettings(source=None, destination="p", flatten=-2),
    PolicySettings(source=None, destination="p", destination_namespace="Bad Name"),
    PolicySettings(source=None, destination="p", filters=(Filter("label", "x"),)),
    PolicySettings(source=None, destination="p", filters=(Filter("tag", "["),)),
    PolicySettings(source=None, destination="p", override="yes"),
])
def test_bad_policies_are_refused(settings):
    with pytest.raises(InvalidInputError):
        settings.checked()


def test_settings_round_trip_through_event_fields():
    policy = push_to(filters=(Filter("tag", "v*"),), trigger="scheduled", cron="0 0 * * *", deletion=True)
    assert PolicySettings.from_fields(policy.fields()) == policy
