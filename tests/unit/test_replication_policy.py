"""Replication policy settings: validation, filters and where names land at the destination."""

from __future__ import annotations

import pytest

from domain.errors import InvalidInputError
from domain.replication import Filter, PolicySettings
from domain.replication_runs import plan_copies


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
    PolicySettings(source="p", destination=None, filters=(Filter("label", "", labels=("x",)),)),
    PolicySettings(source=None, destination="p", filters=(Filter("label", "", labels=("",)),)),
    PolicySettings(source=None, destination="p", filters=(Filter("color", "x"),)),
    PolicySettings(source=None, destination="p", filters=(Filter("tag", "["),)),
    PolicySettings(source=None, destination="p", override="yes"),
])
def test_bad_policies_are_refused(settings):
    with pytest.raises(InvalidInputError):
        settings.checked()


def test_settings_round_trip_through_event_fields():
    policy = push_to(filters=(Filter("tag", "v*"), Filter("label", "", True, ("beta", "rc"))), trigger="scheduled",
                     cron="0 0 * * *", deletion=True)
    assert PolicySettings.from_fields(policy.fields()) == policy
    assert policy.fields()["filters"][0] == {"type": "tag", "pattern": "v*", "excluding": False}  # as before labels


def test_label_filters_select_artifacts_carrying_every_label_named_or_exclude_them():
    release = push_to(filters=(Filter("label", "", labels=("release", "signed")),))
    assert release.selects_labels({"release", "signed", "team"}) and not release.selects_labels({"release"})
    not_beta = push_to(filters=(Filter("label", "", True, ("beta",)),))
    assert not_beta.selects_labels(set()) and not not_beta.selects_labels({"beta", "x"})
    assert push_to(filters=(Filter("label", "", labels=()),)).selects_labels(set())  # no name: every artifact
    assert push_to().selects_labels(set()) and not push_to().filters_on_labels


def test_planning_selects_tags_by_the_labels_of_their_artifacts():
    policy = push_to(filters=(Filter("tag", "v*"), Filter("label", "", labels=("release",))))
    tags = lambda name: ["v1", "v2", "latest"]  # noqa: E731
    labels = lambda name: {"v1": frozenset({"release"}), "latest": frozenset({"release"})}  # noqa: E731
    planned = plan_copies(policy, ["team/app"], tags, labels)
    assert [(t["source_repository"], t["reference"]) for t in planned] == [("team/app", "v1")]
    with pytest.raises(InvalidInputError):  # a listing without labels cannot honour a label filter
        plan_copies(policy, ["team/app"], tags)
    assert len(plan_copies(push_to(), ["team/app"], tags, labels)) == 3
