"""Retention plans: each template, selection by repository and tag, OR of rules, index children
and referrers kept with what needs them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from domain.errors import InvalidInputError
from domain.immutability import Selector
from domain.retention import Artifact, RetentionRule, checked_rules, plan

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def artifact(digest: str, pushed_days_ago: float, *tags: str, pulled_days_ago: float | None = None,
             **extra) -> Artifact:
    pulled = days_ago(pulled_days_ago) if pulled_days_ago is not None else None
    return Artifact(digest, days_ago(pushed_days_ago), tuple(tags), pulled, **extra)


def deleted(rules, repositories) -> set[tuple[str, str]]:
    return {(d.repository, d.digest) for d in plan(rules, repositories, NOW).deletions}


REPO = {"team/app": [artifact("a", 1, "v3"), artifact("b", 2, "v2"), artifact("c", 3, "v1"),
                     artifact("d", 4), artifact("e", 5, "dev-1")]}


def test_latest_pushed_k_keeps_the_newest_selected_and_deletes_the_rest():
    rule = RetentionRule("latestPushedK", 2, tags=Selector("v*"))
    assert deleted([rule], REPO) == {("team/app", "c"), ("team/app", "d"), ("team/app", "e")}


def test_untagged_artifacts_are_selected_only_when_the_rule_says_so():
    keep_untagged = RetentionRule("always", untagged=True, tags=Selector("v*"))
    assert deleted([keep_untagged], REPO) == {("team/app", "e")}


def test_rules_combine_with_or():
    rules = [RetentionRule("latestPushedK", 1, tags=Selector("v*")), RetentionRule("always", tags=Selector("dev-*"))]
    assert deleted(rules, REPO) == {("team/app", "b"), ("team/app", "c"), ("team/app", "d")}


def test_days_since_push_and_pull():
    repo = {"team/app": [artifact("a", 10, "x", pulled_days_ago=1), artifact("b", 2, "y"),
                         artifact("c", 10, "z", pulled_days_ago=20)]}
    assert deleted([RetentionRule("nDaysSinceLastPush", 7)], repo) == {("team/app", "a"), ("team/app", "c")}
    assert deleted([RetentionRule("nDaysSinceLastPull", 7)], repo) == {("team/app", "b"), ("team/app", "c")}
    assert deleted([RetentionRule("latestPulledN", 1)], repo) == {("team/app", "b"), ("team/app", "c")}


def test_repositories_no_rule_selects_are_left_alone():
    repos = {"team/app": [artifact("a", 1, "v1")], "team/tools/x": [artifact("b", 1, "v1")]}
    rule = RetentionRule("latestPushedK", 0, repositories=Selector("app"))
    assert deleted([rule], repos) == {("team/app", "a")}
    excluding = RetentionRule("latestPushedK", 0, repositories=Selector("app", excluding=True))
    assert deleted([excluding], repos) == {("team/tools/x", "b")}


def test_a_kept_index_keeps_its_children_and_referrers_follow_their_subject():
    repo = {"team/app": [artifact("index", 1, "v1", children=("amd64", "arm64")), artifact("amd64", 1),
                         artifact("arm64", 1), artifact("sig", 0, subject="index"),
                         artifact("old", 9, "v0"), artifact("old-sig", 0, subject="old")]}
    rule = RetentionRule("latestPushedK", 1, tags=Selector("v*"))
    assert deleted([rule], repo) == {("team/app", "old"), ("team/app", "old-sig")}


def test_dependents_are_kept_to_any_depth():
    repo = {"team/app": [artifact("image", 1, "v1"), artifact("sbom", 0, subject="image"),
                         artifact("sbom-sig", 0, subject="sbom"),
                         artifact("index-ref", 0, subject="image", children=("ref-child",)), artifact("ref-child", 0),
                         artifact("old", 9, "v0")]}
    assert deleted([RetentionRule("latestPushedK", 1, tags=Selector("v*"))], repo) == {("team/app", "old")}


def test_disabled_rules_select_nothing():
    assert deleted([RetentionRule("latestPushedK", 0, disabled=True)], REPO) == set()


@pytest.mark.parametrize("rule", [
    RetentionRule("keepAll"), RetentionRule("latestPushedK", None), RetentionRule("latestPushedK", -1),
    RetentionRule("nDaysSinceLastPush", True), RetentionRule("always", tags=Selector("[")),
    RetentionRule("always", untagged="yes"),
])
def test_bad_rules_are_refused_with_a_clear_error(rule):
    with pytest.raises(InvalidInputError):
        checked_rules([rule])


def test_the_plan_is_a_function_of_its_inputs():
    rule = RetentionRule("latestPushedK", 2, tags=Selector("**"))
    assert plan([rule], REPO, NOW) == plan([rule], REPO, NOW)
    assert plan([rule], REPO, NOW).retained == 2
