"""Cron schedules: parsing the 5-field, Harbor's 6-field and macro forms, and finding the next time."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from domain.cron import CronSchedule
from domain.errors import InvalidInputError


def at(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=timezone.utc)


def next_after(expression: str, moment: datetime) -> datetime:
    return CronSchedule.parse(expression).next_after(moment)


# 1 June 2025 is a Sunday; the Fridays of June 2025 are the 6th, 13th, 20th and 27th.

@pytest.mark.parametrize("expression, moment, expected", [
    ("* * * * *", at(2025, 6, 1, 10, 0), at(2025, 6, 1, 10, 1)),
    ("30 10 * * *", at(2025, 6, 1, 10, 29, 59), at(2025, 6, 1, 10, 30)),
    ("30 10 * * *", at(2025, 6, 1, 10, 30), at(2025, 6, 2, 10, 30)),
    ("*/15 * * * *", at(2025, 6, 1, 10, 7, 30), at(2025, 6, 1, 10, 15)),
    ("*/15 * * * *", at(2025, 6, 1, 23, 50), at(2025, 6, 2, 0, 0)),
    ("5,35 * * * *", at(2025, 6, 1, 10, 6), at(2025, 6, 1, 10, 35)),
    ("0,30 1-3,22 * * *", at(2025, 6, 1, 3, 30), at(2025, 6, 1, 22, 0)),
    ("0 9-17 * * *", at(2025, 6, 1, 17, 30), at(2025, 6, 2, 9, 0)),
    ("0 8-18/5 * * *", at(2025, 6, 1, 8, 0), at(2025, 6, 1, 13, 0)),
    ("0 8-18/5 * * *", at(2025, 6, 1, 13, 0), at(2025, 6, 1, 18, 0)),
    ("0 8-18/5 * * *", at(2025, 6, 1, 18, 0), at(2025, 6, 2, 8, 0)),
    ("10/20 * * * *", at(2025, 6, 1, 10, 31), at(2025, 6, 1, 10, 50)),
    ("10/20 * * * *", at(2025, 6, 1, 10, 50), at(2025, 6, 1, 11, 10)),
])
def test_minutes_and_hours(expression, moment, expected):
    assert next_after(expression, moment) == expected


@pytest.mark.parametrize("expression, moment, expected", [
    ("0 0 1 * *", at(2025, 1, 31, 12), at(2025, 2, 1)),
    ("0 0 31 * *", at(2025, 4, 1), at(2025, 5, 31)),  # April has 30 days
    ("0 0 31 * *", at(2025, 1, 31), at(2025, 3, 31)),  # and February fewer
    ("0 12 30 * *", at(2025, 1, 30, 12), at(2025, 3, 30, 12)),
    ("0 0 1 1 *", at(2025, 6, 1), at(2026, 1, 1)),
    ("59 23 31 12 *", at(2025, 12, 31, 23, 58), at(2025, 12, 31, 23, 59)),
    ("59 23 31 12 *", at(2025, 12, 31, 23, 59), at(2026, 12, 31, 23, 59)),
    ("0 0 * 2 *", at(2100, 2, 28, 1), at(2101, 2, 1)),  # 2100 is no leap year
])
def test_month_and_year_boundaries(expression, moment, expected):
    assert next_after(expression, moment) == expected


@pytest.mark.parametrize("moment, expected", [
    (at(2025, 3, 1), at(2028, 2, 29)),
    (at(2024, 2, 28, 23, 59), at(2024, 2, 29)),
    (at(2024, 2, 29), at(2028, 2, 29)),
    (at(2096, 3, 1), at(2104, 2, 29)),  # eight years: 2100 is no leap year
])
def test_29_february_waits_for_a_leap_year(moment, expected):
    assert next_after("0 0 29 2 *", moment) == expected


def test_the_31st_of_each_month_over_a_year():
    schedule = CronSchedule.parse("0 0 31 * *")
    moment, fired = at(2024, 12, 31), []
    for _ in range(7):
        moment = schedule.next_after(moment)
        fired.append(moment)
    assert fired == [at(2025, month, 31) for month in (1, 3, 5, 7, 8, 10, 12)]


@pytest.mark.parametrize("expression, moment, expected", [
    ("0 0 1 jan,Jul *", at(2025, 2, 1), at(2025, 7, 1)),
    ("0 0 1 MAR-may *", at(2025, 5, 2), at(2026, 3, 1)),
    ("0 0 1 Dec *", at(2025, 6, 1), at(2025, 12, 1)),
    ("0 9 * * mon-FRI", at(2025, 6, 6, 10), at(2025, 6, 9, 9)),
    ("0 9 * * 1-5", at(2025, 6, 6, 10), at(2025, 6, 9, 9)),
    ("0 9 * * 1-5", at(2025, 6, 9, 8), at(2025, 6, 9, 9)),
    ("0 0 * * 0", at(2025, 6, 2), at(2025, 6, 8)),
    ("0 0 * * 7", at(2025, 6, 2), at(2025, 6, 8)),
    ("0 0 * * sun", at(2025, 6, 2), at(2025, 6, 8)),
    ("0 0 * * 5-7", at(2025, 6, 2), at(2025, 6, 6)),
    ("0 0 * * 5-7", at(2025, 6, 7, 1), at(2025, 6, 8)),
    ("0 0 * * 5-7", at(2025, 6, 8, 1), at(2025, 6, 13)),
    ("0 0 * * */2", at(2025, 6, 1, 1), at(2025, 6, 3)),  # Sun, Tue, Thu, Sat
    ("0 0 * * SAT", at(2025, 12, 28), at(2026, 1, 3)),
])
def test_month_and_weekday_names_and_numbers(expression, moment, expected):
    assert next_after(expression, moment) == expected


@pytest.mark.parametrize("expression, moment, expected", [
    # Both day fields restricted: either one matching is enough.
    ("0 0 13 * FRI", at(2025, 6, 1), at(2025, 6, 6)),
    ("0 0 13 * FRI", at(2025, 6, 6), at(2025, 6, 13)),
    ("0 0 13 * FRI", at(2025, 6, 13), at(2025, 6, 20)),
    ("0 0 13 * FRI", at(2025, 7, 12), at(2025, 7, 13)),  # a Sunday
    ("0 0 1 * MON", at(2025, 6, 24), at(2025, 6, 30)),
    ("0 0 1 * MON", at(2025, 6, 30), at(2025, 7, 1)),
    ("0 0 30 2 MON", at(2025, 1, 1), at(2025, 2, 3)),  # no 30 February, but Mondays in February
    # Only one restricted: that one decides.
    ("0 0 13 * *", at(2025, 6, 1), at(2025, 6, 13)),
    ("0 0 * * FRI", at(2025, 6, 6), at(2025, 6, 13)),
    ("0 0 ? * FRI", at(2025, 6, 6), at(2025, 6, 13)),
    ("0 0 13 * ?", at(2025, 6, 1), at(2025, 6, 13)),
    ("0 0 0 ? * FRI", at(2025, 6, 6), at(2025, 6, 13)),
])
def test_day_of_month_or_day_of_week(expression, moment, expected):
    assert next_after(expression, moment) == expected


def test_which_day_fields_count_as_restricted():
    both = CronSchedule.parse("0 0 13 * FRI")
    assert both.day_of_month_restricted and both.day_of_week_restricted
    assert both.day_matches(at(2025, 6, 6).date()) and both.day_matches(at(2025, 7, 13).date())
    assert not both.day_matches(at(2025, 6, 7).date())
    only_month = CronSchedule.parse("0 0 13 * ?")
    assert only_month.day_of_month_restricted and not only_month.day_of_week_restricted
    assert not only_month.day_matches(at(2025, 6, 6).date())


@pytest.mark.parametrize("expression, moment, expected", [
    ("0 0 0 * * *", at(2025, 6, 1, 12), at(2025, 6, 2)),
    ("0 0 0 * * *", at(2025, 6, 1, 23, 59, 59), at(2025, 6, 2)),
    ("0 0 0 * * *", at(2025, 6, 2), at(2025, 6, 3)),
    ("0 0 * * * *", at(2025, 6, 1, 12, 34, 56), at(2025, 6, 1, 13)),
    ("0 0 * * * *", at(2025, 6, 1, 23), at(2025, 6, 2, 0)),
    ("0 0 0 * * 0", at(2025, 6, 2), at(2025, 6, 8)),
    ("*/10 * * * * *", at(2025, 6, 1, 12, 0, 5), at(2025, 6, 1, 12, 0, 10)),
    ("*/10 * * * * *", at(2025, 6, 1, 12, 59, 50), at(2025, 6, 1, 13, 0, 0)),
    ("30 * * * * *", at(2025, 6, 1, 12, 0, 30), at(2025, 6, 1, 12, 1, 30)),
    ("15,45 30 2 * * *", at(2025, 6, 1, 2, 30, 15), at(2025, 6, 1, 2, 30, 45)),
    ("15,45 30 2 * * *", at(2025, 6, 1, 2, 30, 45), at(2025, 6, 2, 2, 30, 15)),
    ("59 59 23 31 12 *", at(2025, 12, 31, 23, 59, 59), at(2026, 12, 31, 23, 59, 59)),
    ("0 0 0 1 1 *", at(2025, 12, 31, 23, 59, 59), at(2026, 1, 1)),
])
def test_harbor_six_fields_with_seconds(expression, moment, expected):
    assert next_after(expression, moment) == expected


def test_five_fields_fire_at_second_zero():
    schedule = CronSchedule.parse("* * * * *")
    assert schedule.seconds == (0,)
    assert schedule.next_after(at(2025, 6, 1, 12, 0, 1)) == at(2025, 6, 1, 12, 1, 0)


@pytest.mark.parametrize("expression, moment, expected", [
    ("@hourly", at(2025, 6, 1, 12, 34), at(2025, 6, 1, 13)),
    ("@daily", at(2025, 6, 1, 12), at(2025, 6, 2)),
    ("@midnight", at(2025, 6, 1, 12), at(2025, 6, 2)),
    ("@weekly", at(2025, 6, 2), at(2025, 6, 8)),
    ("@monthly", at(2025, 6, 1), at(2025, 7, 1)),
    ("@yearly", at(2025, 6, 1), at(2026, 1, 1)),
    ("@annually", at(2025, 1, 1), at(2026, 1, 1)),
    ("@DAILY", at(2025, 6, 1), at(2025, 6, 2)),
    ("  @hourly\n", at(2025, 6, 1, 23, 0), at(2025, 6, 2, 0, 0)),
])
def test_macros(expression, moment, expected):
    assert next_after(expression, moment) == expected


def test_parsed_values():
    schedule = CronSchedule.parse("*/20 1,2 1-3 jan,DEC 7")
    assert schedule.seconds == (0,)
    assert schedule.minutes == (0, 20, 40)
    assert schedule.hours == (1, 2)
    assert schedule.days_of_month == (1, 2, 3)
    assert schedule.months == (1, 12)
    assert schedule.days_of_week == (0,)
    harbor = CronSchedule.parse("5-10/2 0 0 * * 5-7")
    assert harbor.seconds == (5, 7, 9)
    assert harbor.days_of_week == (0, 5, 6)
    assert harbor.days_of_month == tuple(range(1, 32))


def test_the_next_time_is_strictly_after_and_drops_sub_seconds():
    assert next_after("* * * * * *", at(2025, 6, 1, 12, 0, 0, 500000)) == at(2025, 6, 1, 12, 0, 1)
    assert next_after("0 * * * * *", at(2025, 6, 1, 12, 0, 0, 500000)) == at(2025, 6, 1, 12, 1, 0)
    assert next_after("* * * * *", at(2025, 6, 1, 12, 0, 59, 999999)) == at(2025, 6, 1, 12, 1, 0)


def test_other_time_zones_are_converted_to_utc():
    paris_summer = timezone(timedelta(hours=2))
    result = next_after("0 22 * * *", datetime(2025, 6, 1, 23, 30, tzinfo=paris_summer))  # 21:30 UTC
    assert result == at(2025, 6, 1, 22, 0)
    assert result.tzinfo == timezone.utc


def test_naive_datetimes_are_refused():
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        next_after("* * * * *", datetime(2025, 6, 1))


@pytest.mark.parametrize("expression, moment", [
    ("* * * * *", at(9999, 12, 31, 23, 59)),
    ("* * * * * *", at(9999, 12, 31, 23, 59, 59)),
    ("0 0 29 2 *", at(9997, 1, 1)),
])
def test_no_time_after_the_last_representable_year(expression, moment):
    with pytest.raises(InvalidInputError, match="cron: "):
        next_after(expression, moment)


def test_distant_times_are_found():
    schedule = CronSchedule.parse("59 59 23 29 2 *")
    assert schedule.next_after(at(2096, 3, 1)) == at(2104, 2, 29, 23, 59, 59)


@pytest.mark.parametrize("text, expected", [
    ("  0 0 * * *\n", "0 0 * * *"),
    ("0 0 0 * * *", "0 0 0 * * *"),
    ("\t@daily ", "@daily"),
    ("*/5 * * JAN mon", "*/5 * * JAN mon"),
])
def test_str_gives_back_the_stripped_expression(text, expected):
    schedule = CronSchedule.parse(text)
    assert str(schedule) == expected
    assert repr(schedule) == f"CronSchedule.parse({expected!r})"


@pytest.mark.parametrize("expression, message", [
    ("61 * * * *", "cron: minute field '61' is out of range 0-59"),
    ("1,61 * * * *", "cron: minute field '61' is out of range 0-59"),
    ("0-61 * * * *", "cron: minute field '0-61' is out of range 0-59"),
    ("* 24 * * *", "cron: hour field '24' is out of range 0-23"),
    ("* * 0 * *", "cron: day-of-month field '0' is out of range 1-31"),
    ("* * 32 * *", "cron: day-of-month field '32' is out of range 1-31"),
    ("* * * 13 *", "cron: month field '13' is out of range 1-12"),
    ("* * * * 8", "cron: day-of-week field '8' is out of range 0-7"),
    ("60 * * * * *", "cron: second field '60' is out of range 0-59"),
    ("*/0 * * * *", "cron: minute field '*/0' has a step of 0 (steps start at 1)"),
    ("*/x * * * *", "cron: minute field '*/x' has an invalid step 'x'"),
    ("5-1 * * * *", "cron: minute field '5-1' is a range that runs backwards"),
    ("* * * * FRI-SUN", "cron: day-of-week field 'FRI-SUN' is a range that runs backwards"),
    ("a b c d e", "cron: minute field 'a' is not a number"),
    ("? * * * *", "cron: minute field '?' is not a number"),
    ("* * * JANUARY *", "cron: month field 'JANUARY' is not a number or a month name"),
    ("* * * * MONDAY", "cron: day-of-week field 'MONDAY' is not a number or a day-of-week name"),
    ("* * * MON *", "cron: month field 'MON' is not a number or a month name"),
    ("1,,2 * * * *", "cron: minute field '1,,2' has an empty list item"),
    ("", "cron: the expression is empty"),
    (" \t\n", "cron: the expression is empty"),
    ("* * *", "cron: expected 5 fields (minute hour day-of-month month day-of-week) or 6 with a leading "
              "second field, got 3"),
    ("* * * * * * *", "cron: expected 5 fields (minute hour day-of-month month day-of-week) or 6 with a leading "
                      "second field, got 7"),
    ("@fortnightly", "cron: unknown macro '@fortnightly' "
                     "(known: @annually, @daily, @hourly, @midnight, @monthly, @weekly, @yearly)"),
    ("0 0 30 2 *", "cron: day-of-month field '30' never occurs in month field '2'"),
    ("0 0 31 4,6,9,11 *", "cron: day-of-month field '31' never occurs in month field '4,6,9,11'"),
    ("0 0 0 30-31 feb *", "cron: day-of-month field '30-31' never occurs in month field 'feb'"),
    ("x" * 2000, "cron: the expression is longer than 1024 characters"),
])
def test_error_messages_name_the_field(expression, message):
    with pytest.raises(InvalidInputError) as raised:
        CronSchedule.parse(expression)
    assert raised.value.message == message
    assert str(raised.value) == message


def test_errors_carry_the_expression_field_and_value():
    with pytest.raises(InvalidInputError) as raised:
        CronSchedule.parse(" 0 12 * * 9 ")
    assert raised.value.detail == {"expression": "0 12 * * 9", "field": "day-of-week", "value": "9"}


@pytest.mark.parametrize("expression", [
    "", "* * *", "a b c d e", "*/0 * * * *", "5-1 * * * *", "x" * 100_000, "* " * 600, "1" * 5000 + " * * * *",
    "9" * 1000 + " * * * *", "-1 * * * *", "1-2-3 * * * *", "1/2/3 * * * *", "*/ * * * *", "/5 * * * *",
    "- * * * *", "1- * * * *", "-5 * * * *", "0x10 * * * *", "1e3 * * * *", "+5 * * * *", " 5.0 * * * *",
    "\x00 * * * *", "\u0663 * * * *", "\u00b2 * * * *", "\uff11 * * * *", "@", "@daily extra", "@ daily",
    "* * ?/2 * *", "*/1/1 * * * *", "* * * * 7-0", "* * * jan-13 *", ", * * * *", "** * * * *",
    "*-5 * * * *", "5-* * * * *", "* * * * * 5 6", "@every 5m", "0 0 30 2 *",
])
def test_garbage_raises_only_invalid_input(expression):
    with pytest.raises(InvalidInputError) as raised:
        CronSchedule.parse(expression)
    assert raised.value.message.startswith("cron: ")


@pytest.mark.parametrize("value", [None, 5, b"* * * * *", ["*"] * 5])
def test_non_strings_are_refused(value):
    with pytest.raises(InvalidInputError, match="must be a string"):
        CronSchedule.parse(value)


def test_random_input_parses_or_raises_invalid_input():
    generator = random.Random(20250601)
    bounds = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    shapes = ["*", "?", "{a}", "{a}-{b}", "*/{c}", "{a}/{c}", "{a}-{b}/{c}", "{a},{b}", "jan-{b}", "sun,{a}"]
    insertions = ["*", "/", "-", ",", "?", "@", "x", " ", "99"]

    def random_field(low: int, high: int) -> str:
        numbers = {"a": generator.randint(low, high), "b": generator.randint(low, high), "c": generator.randint(0, 9)}
        field = generator.choice(shapes).format(**numbers)
        if generator.random() < 0.1:
            position = generator.randint(0, len(field))
            field = field[:position] + generator.choice(insertions) + field[position:]
        return field

    moment, parsed = at(2025, 6, 1, 12), 0
    for _ in range(3000):
        expression = " ".join(random_field(*bound) for bound in bounds[generator.choice((0, 1)):])
        try:
            schedule = CronSchedule.parse(expression)
        except InvalidInputError as error:
            assert error.message.startswith("cron: ")
            continue
        parsed += 1
        assert schedule.next_after(moment) > moment
    assert parsed > 100  # the generator does reach next_after


def test_agrees_with_checking_every_minute():
    generator = random.Random(42)

    def random_field(low: int, high: int) -> str:
        first = generator.randint(low, high)
        return generator.choice([
            "*", str(first), f"{first}-{high}", f"*/{generator.randint(2, 9)}", f"{low},{first}",
            f"{first}/{generator.randint(2, 9)}",
        ])

    for _ in range(40):
        expression = " ".join([
            random_field(0, 59), random_field(0, 23), random_field(1, 31), "*", random_field(0, 7),
        ])
        schedule = CronSchedule.parse(expression)
        start = at(2025, 1, 1) + timedelta(minutes=generator.randint(0, 500_000), seconds=generator.randint(0, 59))
        found = schedule.next_after(start)
        assert found > start
        candidate = start.replace(second=0) + timedelta(minutes=1)
        while candidate < found:
            assert not _fires_at(schedule, candidate), (expression, start, candidate)
            candidate += timedelta(minutes=1)
        assert _fires_at(schedule, found), (expression, start, found)


def _fires_at(schedule: CronSchedule, moment: datetime) -> bool:
    return (
        schedule.day_matches(moment.date()) and moment.month in schedule.months
        and moment.hour in schedule.hours and moment.minute in schedule.minutes and moment.second == 0
    )
