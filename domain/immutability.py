"""Tag immutability: the rules that protect tags from being moved or deleted, and the
doublestar patterns they are written in.

A rule selects repositories — by their name without the project, as Harbor does — and tags,
each with one pattern that it either matches or excludes. A tag is immutable when an enabled
rule of its repository's project selects both. Rules live in the Project aggregate
(domain/project.py); the registry refuses, from the log as it stands at each command, to move or
delete an immutable tag (domain/push_checks.py ImmutableTags).

Patterns follow doublestar (Harbor's matcher): `*` is any run of characters but `/`, `?` one
character but `/`, `[a-z]` / `[!a-z]` a character class, `{a,b}` alternatives (which may nest
and hold patterns), `\\x` a literal x, and `**` any run of characters, `/` included. `**/` at
the start (or after `/`) also matches no directory at all (`**/app` matches `app`), and `/**`
at the end also matches the directory itself (`app/**` matches `app`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from domain.errors import InvalidInputError

MAX_PATTERN_LENGTH = 255
# Alternatives a pattern may spell out ({a,b} and the optional `**/`, `/**` each multiply them).
MAX_ALTERNATIVES = 64
# What an immutability rule event records (domain/project.py), and the management API shows.
RULE_FIELDS = ("repositories", "exclude_repositories", "tags", "exclude_tags", "disabled", "priority")


class PatternError(ValueError):
    pass


def matches(pattern: str, value: str) -> bool:
    """Runs the pattern's alternatives side by side over `value`, one character at a time (a
    set of positions in each, as an automaton would): time grows with the lengths, never
    exponentially as a backtracking regular expression can with many `*`."""
    alternatives = compiled(pattern)
    active = _advance_over_stars({(a, 0) for a in range(len(alternatives))}, alternatives)
    for char in value:
        active = _advance_over_stars(_step(active, alternatives, char), alternatives)
        if not active:
            return False
    return any(at == len(alternatives[a]) for a, at in active)


@dataclass(frozen=True)
class _Token:
    accepts: Callable[[str], bool]
    repeats: bool = False  # a star: any number of accepted characters, none included


_STAR = _Token(lambda char: char != "/", repeats=True)
_GLOBSTAR = _Token(lambda char: True, repeats=True)
_ONE = _Token(lambda char: char != "/")


def _literal(expected: str) -> _Token:
    return _Token(lambda char: char == expected)


def _step(active: set[tuple[int, int]], alternatives: tuple, char: str) -> set[tuple[int, int]]:
    following = set()
    for a, at in active:
        if at < len(alternatives[a]) and alternatives[a][at].accepts(char):
            following.add((a, at if alternatives[a][at].repeats else at + 1))
    return following


def _advance_over_stars(active: set[tuple[int, int]], alternatives: tuple) -> set[tuple[int, int]]:
    """Adds the positions after each star reached: a star may match nothing."""
    reached, pending = set(active), list(active)
    while pending:
        a, at = pending.pop()
        if at < len(alternatives[a]) and alternatives[a][at].repeats and (a, at + 1) not in reached:
            reached.add((a, at + 1))
            pending.append((a, at + 1))
    return reached


@lru_cache(maxsize=1024)
def compiled(pattern: str) -> tuple[tuple[_Token, ...], ...]:
    """The pattern as alternatives of tokens; PatternError if it is empty, overlong or malformed."""
    if not pattern:
        raise PatternError("a pattern cannot be empty")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"a pattern has at most {MAX_PATTERN_LENGTH} characters")
    alternatives = [tuple(tokens) for text in _expand_braces(pattern) for tokens in _tokens(text)]
    if len(alternatives) > MAX_ALTERNATIVES:
        raise PatternError(f"a pattern spells out at most {MAX_ALTERNATIVES} alternatives")
    return tuple(alternatives)


def _expand_braces(pattern: str) -> list[str]:
    """`a{b,c}d` -> [abd, acd], the first group first, nested groups by recursion."""
    bounds = _first_brace_group(pattern)  # the opening brace, each top-level comma, the closing brace
    if bounds is None:
        return [pattern]
    expanded: list[str] = []
    for start, end in zip(bounds, bounds[1:]):
        expanded += _expand_braces(pattern[:bounds[0]] + pattern[start + 1:end] + pattern[bounds[-1] + 1:])
        if len(expanded) > MAX_ALTERNATIVES:
            raise PatternError(f"a pattern spells out at most {MAX_ALTERNATIVES} alternatives")
    return expanded


def _first_brace_group(pattern: str) -> list[int] | None:
    """Positions of the first `{`, its top-level commas and its `}`; escapes and classes are skipped."""
    depth, bounds, at = 0, [], 0
    while at < len(pattern):
        char = pattern[at]
        if char == "\\":
            at += 1
        elif char == "[":
            end = _class_end(pattern, at)
            at = at if end is None else end
        elif char == "{":
            depth += 1
            if depth == 1:
                bounds = [at]
        elif char == "," and depth == 1:
            bounds.append(at)
        elif char == "}" and depth:
            depth -= 1
            if depth == 0:
                return bounds + [at]
        at += 1
    if depth:
        raise PatternError("unclosed '{' in pattern")
    return None


def _tokens(text: str) -> list[list[_Token]]:
    """The token sequences of a pattern without braces: more than one when it holds an optional
    `**/` (no directory, or some) or `/**` at its end (the directory itself, or below it)."""
    sequences: list[list[_Token]] = [[]]
    at = 0
    while at < len(text):
        choices, at = _next_tokens(text, at)
        sequences = [sequence + choice for sequence in sequences for choice in choices]
        if len(sequences) > MAX_ALTERNATIVES:
            raise PatternError(f"a pattern spells out at most {MAX_ALTERNATIVES} alternatives")
    return sequences


def _next_tokens(text: str, at: int) -> tuple[list[list[_Token]], int]:
    """The choices of tokens the text at `at` stands for, and where the rest begins."""
    if text[at] == "\\":
        if at + 1 == len(text):
            raise PatternError("a pattern cannot end with '\\'")
        return [[_literal(text[at + 1])]], at + 2
    if text.startswith("**/", at) and (at == 0 or text[at - 1] == "/"):
        return [[], [_GLOBSTAR, _literal("/")]], at + 3
    if text.startswith("/**", at) and at + 3 == len(text):
        return [[], [_literal("/"), _GLOBSTAR]], at + 3
    if text.startswith("**", at):
        return [[_GLOBSTAR]], at + 2
    if text[at] == "[":
        end = _class_end(text, at)
        if end is None:
            raise PatternError("unclosed '[' in pattern")
        return [[_character_class(text[at + 1:end])]], end + 1
    single = {"*": _STAR, "?": _ONE}.get(text[at]) or _literal(text[at])
    return [[single]], at + 1


def _class_end(text: str, at: int) -> int | None:
    """The `]` closing the class opened at `at`; a `]` right after `[` (or `[!`) is a member."""
    first = at + 1 + (at + 1 < len(text) and text[at + 1] in "!^")
    end = text.find("]", first + 1)
    return end if first < len(text) and end != -1 else None


def _character_class(inside: str) -> _Token:
    negated = inside[0] in "!^"
    members = inside[1:] if negated else inside
    ranges, at = [], 0
    while at < len(members):
        if at + 2 < len(members) and members[at + 1] == "-":
            low, high = members[at], members[at + 2]
            if low > high:
                raise PatternError(f"bad character range {low}-{high}")
            ranges.append((low, high))
            at += 3
        else:
            ranges.append((members[at], members[at]))
            at += 1
    # A class never matches the separator, negated or not.
    return _Token(lambda char: char != "/" and any(low <= char <= high for low, high in ranges) != negated)


def check_pattern(pattern: object, what: str) -> str:
    if not isinstance(pattern, str):
        raise InvalidInputError(f"the {what} pattern must be a string", {"pattern": pattern})
    try:
        compiled(pattern)
    except PatternError as error:
        raise InvalidInputError(f"invalid {what} pattern {pattern!r}: {error}", {"pattern": pattern}) from None
    return pattern


@dataclass(frozen=True)
class Selector:
    """One pattern, and whether the rule selects what it matches or everything else."""

    pattern: str
    excluding: bool = False

    def selects(self, value: str) -> bool:
        return matches(self.pattern, value) != self.excluding


@dataclass(frozen=True)
class ImmutableRule:
    repositories: Selector
    tags: Selector
    disabled: bool = False
    priority: int = 0

    def protects(self, repository: str, tag: str) -> bool:
        """`repository` is the full name, `team/app`; the rule sees `app`."""
        path = repository.split("/", 1)[1] if "/" in repository else repository
        return not self.disabled and self.repositories.selects(path) and self.tags.selects(tag)

    def same_selection(self, other: ImmutableRule) -> bool:
        return (self.repositories, self.tags) == (other.repositories, other.tags)

    def checked(self) -> ImmutableRule:
        check_pattern(self.repositories.pattern, "repository")
        check_pattern(self.tags.pattern, "tag")
        for name, value in (("exclude_repositories", self.repositories.excluding),
                            ("exclude_tags", self.tags.excluding), ("disabled", self.disabled)):
            if not isinstance(value, bool):
                raise InvalidInputError(f"{name} must be true or false", {name: value})
        if not isinstance(self.priority, int) or isinstance(self.priority, bool):
            raise InvalidInputError("priority must be an integer", {"priority": self.priority})
        return self

    def event_fields(self) -> dict:
        """The rule as its events record it (domain/project.py)."""
        return {"repositories": self.repositories.pattern, "exclude_repositories": self.repositories.excluding,
                "tags": self.tags.pattern, "exclude_tags": self.tags.excluding, "disabled": self.disabled,
                "priority": self.priority}

    @classmethod
    def from_fields(cls, fields: dict) -> ImmutableRule:
        return cls(Selector(fields["repositories"], fields["exclude_repositories"]),
                   Selector(fields["tags"], fields["exclude_tags"]), fields["disabled"], fields["priority"])
