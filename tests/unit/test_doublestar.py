"""The doublestar patterns of tag immutability rules, and the rules built on them."""

from __future__ import annotations

import pytest

from domain.errors import InvalidInputError
from domain.immutability import ImmutableRule, PatternError, Selector, check_pattern, matches


@pytest.mark.parametrize("pattern, value", [
    ("v*", "v1"), ("v*", "v"), ("v*", "v1.2.3-rc.1"), ("*", "latest"),
    ("**", "app"), ("**", "app/sub/deep"), ("v**", "v1"),
    ("app/*", "app/web"), ("**/web", "web"), ("**/web", "a/b/web"),
    ("app/**", "app"), ("app/**", "app/x"), ("app/**", "app/x/y"), ("a/**/b", "a/b"), ("a/**/b", "a/x/y/b"),
    ("{web,api}", "web"), ("{web,api}", "api"), ("{web,api}/**", "api/v2"), ("v{1,2}.*", "v2.0"),
    ("{v{1,2},latest}", "v2"), ("{a/**,b}", "a/deep/er"), ("release-?", "release-1"),
    ("[0-9]*", "1.0"), ("[!a-z]*", "1.0"), ("[^a-z]*", "_x"), ("v1\\*", "v1*"), ("1.0", "1.0"),
    ("[]x]", "]"), ("\\{a,b}", "{a,b}"), ("{,v}1", "1"), ("}a,", "}a,"),
])
def test_matches(pattern, value):
    assert matches(pattern, value)


@pytest.mark.parametrize("pattern, value", [
    ("v*", "latest"), ("v*", "xv1"), ("*", "app/web"), ("app/*", "app/web/x"), ("app/*", "app"),
    ("**/web", "a/webx"), ("app/**", "apps"), ("a/**/b", "a/bc"), ("{web,api}", "webapi"),
    ("{web,api}", "{web,api}"), ("release-?", "release-10"), ("?", "/"), ("[0-9]*", "v1"),
    ("[!a-z]*", "v1"), ("[!x]", "/"), ("1.0", "1x0"), ("v1\\*", "v12"), ("a,b", "a"),
])
def test_does_not_match(pattern, value):
    assert not matches(pattern, value)


@pytest.mark.parametrize("pattern", ["", "{a,b", "[a-z", "[!", "v1\\", "[z-a]", "x" * 256])
def test_malformed_patterns_are_refused(pattern):
    with pytest.raises(PatternError):
        matches(pattern, "v1")
    with pytest.raises(InvalidInputError):
        check_pattern(pattern, "tag")


def test_many_stars_cost_time_in_proportion_not_exponentially():
    # A backtracking regular expression takes seconds on the first at 40 characters, forever at 128.
    assert not matches("*a*a*a*a*a*a*a*b", "a" * 128)
    assert not matches("**a**a**a**a**a**a**a**a**a**b", "a" * 255)


def test_a_pattern_spells_out_a_bounded_number_of_alternatives():
    assert matches("{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}", "bcfgjl")  # 64
    with pytest.raises(PatternError):
        matches("{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}{m,n}", "x")


def rule(repositories="**", tags="v*", exclude_repositories=False, exclude_tags=False, disabled=False):
    return ImmutableRule(Selector(repositories, exclude_repositories), Selector(tags, exclude_tags), disabled)


def test_a_rule_sees_the_repository_without_its_project():
    assert rule(repositories="app").protects("team/app", "v1")
    assert not rule(repositories="team/app").protects("team/app", "v1")
    assert rule(repositories="app/**").protects("team/app/web", "v1")
    assert rule(repositories="{web,api}").protects("team/api", "v1")
    assert not rule(repositories="{web,api}").protects("team/db", "v1")


def test_exclusions_select_everything_else():
    assert rule(tags="latest", exclude_tags=True).protects("team/app", "v1")
    assert not rule(tags="latest", exclude_tags=True).protects("team/app", "latest")
    assert rule(repositories="tmp/**", exclude_repositories=True).protects("team/app", "v1")
    assert not rule(repositories="tmp/**", exclude_repositories=True).protects("team/tmp/x", "v1")


def test_a_disabled_rule_protects_nothing():
    assert not rule(disabled=True).protects("team/app", "v1")


def test_checked_rules_have_well_typed_fields():
    with pytest.raises(InvalidInputError):
        rule(tags="{v1").checked()
    with pytest.raises(InvalidInputError):
        ImmutableRule(Selector("**"), Selector("v*"), priority="1").checked()
    assert ImmutableRule.from_fields(rule().event_fields()) == rule()
