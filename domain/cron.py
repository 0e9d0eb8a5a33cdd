"""Cron schedules: parse an expression, and find the next time it fires.

Accepted forms:

* standard cron, five fields: ``minute hour day-of-month month day-of-week``;
* Harbor's six fields, with a leading seconds field: ``"0 0 0 * * *"`` is daily at midnight,
  ``"0 0 * * * *"`` hourly;
* the macros ``@hourly``, ``@daily`` (``@midnight``), ``@weekly``, ``@monthly``, ``@yearly``
  (``@annually``), any case.

A field is a comma-separated list of items; an item is ``*``, a number, a range ``a-b``, or one of
these followed by a step: ``*/n``, ``a-b/n``, and ``a/n`` (from ``a`` to the field's maximum).
Months may be named ``JAN``-``DEC`` and weekdays ``SUN``-``SAT``, in any case. Day of week runs
0-7, where both 0 and 7 are Sunday. The two day fields also take ``?`` (Quartz, Harbor) for ``*``.

As in classic cron, when both day fields are restricted (neither is exactly ``*`` or ``?``) a day
matches if EITHER matches: ``0 0 13 * FRI`` fires on every 13th and on every Friday.

Times are UTC, to the second; with five fields the second is always 0. Bad input, whatever the
string, raises :class:`domain.errors.InvalidInputError` whose message names the bad field and
whose detail holds the expression, the field and the offending value.

Impossible schedules are refused at parse time by a calendar check, not a search (exact, and
independent of today's date): a schedule whose days of month fall in none of its months
(``"0 0 30 2 *"``, 30 February) never fires. Every other one fires within MAX_YEARS_AHEAD years of
any moment (eight: there is no 29 February from 2096 to 2104), so ``next_after`` searches at most
that far, month by month, then day by day, then through the listed hours, minutes and seconds
only. Should the search reach the year 9999 it raises InvalidInputError rather than overflow.
"""

from __future__ import annotations

import calendar
from bisect import bisect_left
from dataclasses import dataclass
from datetime import MAXYEAR, date, datetime, timedelta, timezone

from domain.errors import InvalidInputError

MAX_EXPRESSION_LENGTH = 1024
# From the day after one 29 February to the next one there may be eight years (2096 to 2104).
MAX_YEARS_AHEAD = 8

MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# The most days each month can have (February in a leap year).
LONGEST_MONTHS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
UNRESTRICTED_DAYS = ("*", "?")


@dataclass(frozen=True)
class FieldSpec:
    """One position of a cron expression: its name, its bounds and the names its values may take
    (the first name stands for `low`)."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    is_day: bool = False

    def error(self, value: str, problem: str, expression: str) -> InvalidInputError:
        return InvalidInputError(
            f"cron: {self.name} field '{value}' {problem}",
            {"expression": expression, "field": self.name, "value": value},
        )


SECOND = FieldSpec("second", 0, 59)
MINUTE = FieldSpec("minute", 0, 59)
HOUR = FieldSpec("hour", 0, 23)
DAY_OF_MONTH = FieldSpec("day-of-month", 1, 31, is_day=True)
MONTH = FieldSpec("month", 1, 12, MONTH_NAMES)
DAY_OF_WEEK = FieldSpec("day-of-week", 0, 7, WEEKDAY_NAMES, is_day=True)
FIELDS = (SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK)


@dataclass(frozen=True, repr=False)
class CronSchedule:
    """A parsed cron expression. Each value tuple is sorted; days of week run 0-6, Sunday 0."""

    text: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: tuple[int, ...]
    months: tuple[int, ...]
    days_of_week: tuple[int, ...]
    day_of_month_restricted: bool
    day_of_week_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        """The schedule `text` spells; InvalidInputError if it is malformed or can never fire."""
        expression = _checked_text(text)
        fields = _field_texts(expression)
        values = [_parse_field(field, spec, expression) for field, spec in zip(fields, FIELDS)]
        seconds, minutes, hours, days_of_month, months, days_of_week = values
        schedule = cls(
            expression, seconds, minutes, hours, days_of_month, months,
            tuple(sorted({day % 7 for day in days_of_week})),
            day_of_month_restricted=fields[3] not in UNRESTRICTED_DAYS,
            day_of_week_restricted=fields[5] not in UNRESTRICTED_DAYS,
        )
        schedule._check_some_day_exists(fields)
        return schedule

    def next_after(self, moment: datetime) -> datetime:
        """The first time the schedule fires strictly after the timezone-aware `moment`, in UTC."""
        start = _second_after(moment)
        last_year = min(start.year + MAX_YEARS_AHEAD, MAXYEAR)
        for day in self._matching_days(start.date(), last_year):
            clock = (start.hour, start.minute, start.second) if day == start.date() else (0, 0, 0)
            time_of_day = self._first_time_of_day_from(*clock)
            if time_of_day is not None:
                return datetime(day.year, day.month, day.day, *time_of_day, tzinfo=timezone.utc)
        raise InvalidInputError(
            f"cron: '{self.text}' does not fire between {start.isoformat()} and the end of {last_year}",
            {"expression": self.text, "after": moment.isoformat()},
        )

    def day_matches(self, day: date) -> bool:
        """Whether the schedule fires on `day` (at some time): both day fields agree, or either does
        when both are restricted."""
        in_month = day.day in self.days_of_month
        in_week = (day.weekday() + 1) % 7 in self.days_of_week
        if self.day_of_month_restricted and self.day_of_week_restricted:
            return in_month or in_week
        return in_month and in_week

    def _matching_days(self, first: date, last_year: int):
        """The days from `first` to the end of `last_year` the schedule fires on, in order."""
        for year in range(first.year, last_year + 1):
            for month in _at_or_after(self.months, first.month if year == first.year else 1):
                start_day = first.day if (year, month) == (first.year, first.month) else 1
                for day_number in range(start_day, calendar.monthrange(year, month)[1] + 1):
                    day = date(year, month, day_number)
                    if self.day_matches(day):
                        yield day

    def _first_time_of_day_from(self, hour: int, minute: int, second: int) -> tuple[int, int, int] | None:
        """The first (hour, minute, second) the schedule lists at or after the given one, or None."""
        for next_hour in _at_or_after(self.hours, hour):
            first_minute = minute if next_hour == hour else 0
            for next_minute in _at_or_after(self.minutes, first_minute):
                first_second = second if (next_hour, next_minute) == (hour, minute) else 0
                for next_second in _at_or_after(self.seconds, first_second):
                    return next_hour, next_minute, next_second
        return None

    def _check_some_day_exists(self, fields: list[str]) -> None:
        """Refuse a day of month that none of the months has, such as 30 February. With the day of
        week restricted too, days of week match on their own (either rule)."""
        if not self.day_of_month_restricted or self.day_of_week_restricted:
            return
        if min(self.days_of_month) <= max(LONGEST_MONTHS[month - 1] for month in self.months):
            return
        raise DAY_OF_MONTH.error(fields[3], f"never occurs in month field '{fields[4]}'", self.text)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"CronSchedule.parse({self.text!r})"


def _checked_text(text: object) -> str:
    """The expression stripped, if it is a non-empty string of reasonable length."""
    if not isinstance(text, str):
        raise InvalidInputError("cron: the expression must be a string", {"expression": repr(text)})
    expression = text.strip()
    if not expression:
        raise InvalidInputError("cron: the expression is empty", {"expression": text})
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise InvalidInputError(
            f"cron: the expression is longer than {MAX_EXPRESSION_LENGTH} characters",
            {"expression": expression[:MAX_EXPRESSION_LENGTH] + "..."},
        )
    return expression


def _field_texts(expression: str) -> list[str]:
    """The six field texts (seconds first) of an expression or macro; seconds '0' if five given."""
    if expression.startswith("@"):
        expansion = MACROS.get(expression.lower())
        if expansion is None:
            names = ", ".join(sorted(MACROS))
            raise InvalidInputError(f"cron: unknown macro '{expression}' (known: {names})", {"expression": expression})
        expression = expansion
    fields = expression.split()
    if len(fields) == 5:
        return ["0", *fields]
    if len(fields) == 6:
        return fields
    raise InvalidInputError(
        f"cron: expected 5 fields (minute hour day-of-month month day-of-week) or 6 with a leading "
        f"second field, got {len(fields)}",
        {"expression": expression},
    )


def _parse_field(text: str, spec: FieldSpec, expression: str) -> tuple[int, ...]:
    """The sorted values a field's comma-separated items list."""
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise spec.error(text, "has an empty list item", expression)
        values.update(_parse_item(item, spec, expression))
    return tuple(sorted(values))


def _parse_item(item: str, spec: FieldSpec, expression: str) -> range:
    """The values of one list item: `*`, `n`, `a-b`, optionally followed by `/step`."""
    base, slash, step_text = item.partition("/")
    step = _parse_step(step_text, item, spec, expression) if slash else 1
    low, high = _parse_bounds(base, item, spec, expression, has_step=bool(slash))
    return range(low, high + 1, step)


def _parse_step(step_text: str, item: str, spec: FieldSpec, expression: str) -> int:
    if not (step_text.isascii() and step_text.isdigit()):
        raise spec.error(item, f"has an invalid step '{step_text}'", expression)
    step = int(step_text)
    if step == 0:
        raise spec.error(item, "has a step of 0 (steps start at 1)", expression)
    return step


def _parse_bounds(base: str, item: str, spec: FieldSpec, expression: str, has_step: bool) -> tuple[int, int]:
    """The first and last value of `*`, `a-b` or `a` (`a` alone runs to the maximum under a step)."""
    if base == "*" or (base == "?" and spec.is_day and not has_step):
        return spec.low, spec.high
    first, dash, last = base.partition("-")
    low = _parse_value(first, item, spec, expression)
    if not dash:
        return low, spec.high if has_step else low
    high = _parse_value(last, item, spec, expression)
    if low > high:
        raise spec.error(item, "is a range that runs backwards", expression)
    return low, high


def _parse_value(token: str, item: str, spec: FieldSpec, expression: str) -> int:
    """A number within the field's bounds, or one of its names."""
    if token.upper() in spec.names:
        return spec.low + spec.names.index(token.upper())
    if not (token.isascii() and token.isdigit()):
        kind = f"a number or a {spec.name} name" if spec.names else "a number"
        raise spec.error(item, f"is not {kind}", expression)
    value = int(token)
    if not spec.low <= value <= spec.high:
        raise spec.error(item, f"is out of range {spec.low}-{spec.high}", expression)
    return value


def _at_or_after(values: tuple[int, ...], start: int) -> tuple[int, ...]:
    """The sorted `values` from the first one at least `start`."""
    return values[bisect_left(values, start):]


def _second_after(moment: datetime) -> datetime:
    """`moment` in UTC, truncated to the second, plus one second: the first candidate time."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInputError("cron: next_after needs a timezone-aware datetime", {"after": moment.isoformat()})
    try:
        return moment.astimezone(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)
    except OverflowError:
        raise InvalidInputError(
            f"cron: no time after {moment.isoformat()} before the year {MAXYEAR + 1}", {"after": moment.isoformat()}
        ) from None
