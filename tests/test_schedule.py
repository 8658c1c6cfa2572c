"""Opening hours: pure schedule maths on an injected clock, across midnight and clock changes."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from installation.config import RuntimeConfig
from installation.schedule import OpeningGate, OpeningHours

PARIS = ZoneInfo("Europe/Paris")


def at(year, month, day, hour, minute=0, zone=PARIS) -> float:
    """The Unix time of a wall-clock time in a zone (first occurrence when it happens twice)."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=zone).timestamp()


def utc(year, month, day, hour, minute=0) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp()


def test_weekday_hours_open_and_close_on_time():
    hours = OpeningHours.parse("mon-fri 10:00-18:00; sat 12:00-14:00", zone="Europe/Paris")
    # 2026-06-01 is a Monday.
    assert not hours.is_open(at(2026, 6, 1, 9, 59))
    assert hours.is_open(at(2026, 6, 1, 10, 0))
    assert hours.is_open(at(2026, 6, 1, 17, 59))
    assert not hours.is_open(at(2026, 6, 1, 18, 0))
    assert hours.next_change(at(2026, 6, 1, 9, 0)) == at(2026, 6, 1, 10, 0)
    assert hours.next_change(at(2026, 6, 1, 11, 0)) == at(2026, 6, 1, 18, 0)
    # Friday evening: next is Saturday noon; Saturday afternoon: next is Monday morning (Sunday closed).
    assert hours.next_change(at(2026, 6, 5, 19, 0)) == at(2026, 6, 6, 12, 0)
    assert hours.next_change(at(2026, 6, 6, 15, 0)) == at(2026, 6, 8, 10, 0)


def test_an_opening_across_midnight_closes_the_next_morning():
    hours = OpeningHours.parse("fri,sat 22:00-02:00", zone="Europe/Paris")
    # Friday 2026-06-05 22:00 to Saturday 02:00, Saturday 22:00 to Sunday 02:00.
    assert not hours.is_open(at(2026, 6, 5, 21, 59))
    assert hours.is_open(at(2026, 6, 5, 23, 30))
    assert hours.is_open(at(2026, 6, 6, 1, 59))  # Saturday morning: still Friday's opening
    assert not hours.is_open(at(2026, 6, 6, 2, 0))
    assert hours.next_change(at(2026, 6, 5, 23, 0)) == at(2026, 6, 6, 2, 0)
    assert hours.next_change(at(2026, 6, 7, 1, 0)) == at(2026, 6, 7, 2, 0)  # Sunday morning, Saturday's opening
    assert hours.next_change(at(2026, 6, 7, 3, 0)) == at(2026, 6, 12, 22, 0)


def test_clocks_going_forward_shorten_the_night_and_keep_wall_clock_times():
    # Europe/Paris: 2026-03-29 02:00 CET becomes 03:00 CEST (01:00 UTC).
    hours = OpeningHours.parse("daily 20:00-04:00", zone="Europe/Paris")
    opens, closes = at(2026, 3, 28, 20), at(2026, 3, 29, 4)
    assert opens == utc(2026, 3, 28, 19) and closes == utc(2026, 3, 29, 2)  # 04:00 CEST is 02:00 UTC
    assert closes - opens == 7 * 3600  # one hour shorter than other nights
    assert hours.next_change(opens + 60) == closes
    assert hours.is_open(utc(2026, 3, 29, 1, 59)) and not hours.is_open(utc(2026, 3, 29, 2, 0))
    # The next evening opens at 20:00 summer time (18:00 UTC), not at 19:00 UTC as before the change.
    assert hours.next_change(closes) == utc(2026, 3, 29, 18)


def test_clocks_going_back_lengthen_the_night():
    # Europe/Paris: 2026-10-25 03:00 CEST becomes 02:00 CET.
    hours = OpeningHours.parse("daily 20:00-04:00", zone="Europe/Paris")
    opens, closes = at(2026, 10, 24, 20), at(2026, 10, 25, 4)
    assert closes - opens == 9 * 3600
    assert closes == utc(2026, 10, 25, 3)
    assert hours.is_open(utc(2026, 10, 25, 2, 59)) and not hours.is_open(utc(2026, 10, 25, 3, 0))


def test_a_closing_time_inside_the_skipped_hour_closes_at_the_change():
    hours = OpeningHours.parse("sat 22:00-02:30", zone="Europe/Paris")
    # 02:30 does not exist on 2026-03-29: read with the winter offset it is 01:30 UTC (03:30 summer time).
    assert hours.next_change(at(2026, 3, 28, 23)) == utc(2026, 3, 29, 1, 30)


def test_exceptions_close_a_day_and_give_another_its_own_hours():
    hours = OpeningHours.parse("mon-fri 10:00-18:00", closed="2026-12-25", open_dates="2026-12-26 12:00-16:00; "
                               "2026-12-27", zone="Europe/Paris")
    assert not hours.is_open(at(2026, 12, 25, 12))  # a Friday, closed for Christmas
    assert hours.next_change(at(2026, 12, 24, 19)) == at(2026, 12, 26, 12)  # Saturday's own hours
    assert hours.is_open(at(2026, 12, 26, 15)) and not hours.is_open(at(2026, 12, 26, 17))
    assert hours.is_open(at(2026, 12, 27, 0, 0)) and hours.is_open(at(2026, 12, 27, 23, 59))  # open all day
    assert hours.next_change(at(2026, 12, 27, 9)) == at(2026, 12, 28, 0)  # midnight, then Monday 10:00 later
    assert hours.next_change(at(2026, 12, 28, 0)) == at(2026, 12, 28, 10)


def test_always_open_and_never_open_have_no_next_change():
    always = OpeningHours.parse("daily 00:00-24:00", zone="UTC")
    assert always.is_open(utc(2026, 6, 1, 3)) and always.next_change(utc(2026, 6, 1, 3)) is None
    never = OpeningHours.parse("", open_dates="2020-01-01", zone="UTC")
    assert not never.is_open(utc(2026, 6, 1, 3)) and never.next_change(utc(2026, 6, 1, 3)) is None


@pytest.mark.parametrize("settings, message", [
    ({"hours": "mon-fri 25:00-18:00"}, "'25:00' is not a time of day"),
    ({"hours": "mon-fry 10:00-18:00"}, "'mon-fry' is not a day"),
    ({"hours": "mon-fri"}, "needs days and an opening"),
    ({"hours": "mon 10-18"}, "is not a time of day"),
    ({"hours": "daily 10:00-18:00", "hours_timezone": "Europe/Pariss"}, "not a known time zone"),
    ({"hours": "daily 10:00-18:00", "hours_closed": "2026-13-01"}, "'2026-13-01' is not a date"),
    ({"hours_closed": "2026-12-25"}, "hours_closed needs opening hours"),
    ({"hours": "daily 10:00-18:00", "hours_closed": "2026-12-25", "hours_open": "2026-12-25 10:00-12:00"},
     "also listed in hours_closed"),
])
def test_bad_schedules_are_refused_with_the_bad_part_named(settings, message):
    with pytest.raises(ValueError, match=message):
        RuntimeConfig(**settings)


def test_the_gate_follows_the_schedule_and_an_override_lasts_until_the_next_change():
    hours = OpeningHours.parse("daily 10:00-18:00", zone="Europe/Paris")
    wall = [at(2026, 6, 1, 9, 0)]
    gate = OpeningGate(hours, clock=lambda: wall[0])
    assert not gate.is_open()
    gate.override("open")  # staff open early: until the scheduled opening, then the schedule (open) again
    assert gate.is_open() and "overridden" in gate.describe()
    wall[0] = at(2026, 6, 1, 12)
    assert gate.is_open() and "schedule" in gate.describe()
    gate.override("closed")  # closed for an event until 18:00, then closed by the schedule anyway
    assert not gate.is_open()
    wall[0] = at(2026, 6, 1, 17, 59)
    assert not gate.is_open()
    wall[0] = at(2026, 6, 2, 10, 0)  # the next day the schedule opens again: the override has ended
    assert gate.is_open()
    gate.override("closed")
    gate.override(None)
    assert gate.is_open()


def test_the_gate_without_a_schedule_is_open_and_a_close_override_holds():
    gate = OpeningGate(None, clock=lambda: 0.0)
    assert gate.is_open()
    gate.override("closed")
    assert not gate.is_open()
    gate.override(None)
    assert gate.is_open()
