"""Opening hours: when the piece shows its walk and when it blanks the screen and stops rendering.

Pure maths first (parse the schedule, is it open at an instant, when is the next change), then `OpeningGate`,
the small stateful part the display loop asks once a frame, with an override from the remote or OSC that lasts
until the next scheduled change.

Times are wall-clock times in the schedule's time zone, so an opening from 22:00 to 02:00 closes at 02:00 local
time whatever happened to the clocks that night. On a night the clocks go forward, a time that does not exist
(02:30) is read with the offset before the change (it falls an hour later, at 03:30 new time); a time that
happens twice when they go back is its first occurrence.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import cv2
import numpy as np

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
SEARCH_DAYS = 400  # how far ahead the next change is looked for (a year of closures, then "never")
EXAMPLE = "mon-fri 10:00-18:00; sat,sun 12:00-22:00"

Span = tuple[int, int]  # minutes after local midnight: start, end (end may pass midnight, up to start + 24 h)


def parse_minutes(text: str, what: str) -> int:
    """'HH:MM' as minutes after midnight; 24:00 is the end of the day."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not match or int(match[2]) > 59 or int(match[1]) > 24 or (int(match[1]) == 24 and int(match[2])):
        raise ValueError(f"{what}: {text.strip()!r} is not a time of day (HH:MM, 00:00..24:00)")
    return int(match[1]) * 60 + int(match[2])


def parse_span(text: str, what: str) -> Span:
    """'10:00-18:00' as a span; a close at or before the open time is on the next day ('22:00-02:00')."""
    parts = text.split("-")
    if len(parts) != 2:
        raise ValueError(f"{what}: {text.strip()!r} is not an opening like 10:00-18:00")
    start, end = (parse_minutes(part, what) for part in parts)
    if start == MINUTES_PER_DAY:
        raise ValueError(f"{what}: an opening cannot start at 24:00")
    if end <= start:
        end += MINUTES_PER_DAY
    return start, end


def parse_days(text: str, what: str) -> list[int]:
    """'mon-fri,sun' (or 'daily') as weekday numbers, Monday 0."""
    words = text.strip().lower()
    if words in ("daily", "every day"):
        return list(range(7))
    days: list[int] = []
    for part in words.split(","):
        ends = [end.strip()[:3] for end in part.split("-")]
        if len(ends) > 2 or not all(end in DAY_NAMES for end in ends):
            raise ValueError(f"{what}: {part.strip()!r} is not a day or range of days "
                             f"({', '.join(DAY_NAMES)}, e.g. mon-fri)")
        first, last = DAY_NAMES.index(ends[0]), DAY_NAMES.index(ends[-1])
        days += [(first + offset) % 7 for offset in range((last - first) % 7 + 1)]
    return days


def parse_date(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{what}: {text.strip()!r} is not a date (YYYY-MM-DD)") from None


def split_rules(text: str) -> list[str]:
    return [rule.strip() for rule in re.split(r"[;\n]", text) if rule.strip()]


def load_zone(name: str) -> ZoneInfo | None:
    """The schedule's zone by IANA name; empty means the machine's own (None: local time functions)."""
    if not name.strip():
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"hours_timezone = {name!r} is not a known time zone (an IANA name such as "
                         "Europe/Paris or America/New_York; empty for the machine's own)") from None


@dataclass(frozen=True)
class OpeningHours:
    """A weekly schedule with dated exceptions, in one time zone."""

    weekly: tuple[tuple[Span, ...], ...]  # seven entries, Monday first
    closed_dates: frozenset[dt.date] = frozenset()
    special: tuple[tuple[dt.date, tuple[Span, ...]], ...] = ()  # dates with their own hours
    zone_name: str = ""
    zone: ZoneInfo | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, hours: str, closed: str = "", open_dates: str = "", zone: str = "") -> OpeningHours:
        """Read the [hours] settings; raises ValueError naming the bad part and the expected form."""
        weekly: list[list[Span]] = [[] for _ in range(7)]
        for rule in split_rules(hours):
            days, _, spans = rule.partition(" ")
            if not spans.strip():
                raise ValueError(f"hours: {rule!r} needs days and an opening, e.g. {EXAMPLE!r}")
            for day in parse_days(days, "hours"):
                weekly[day] += [parse_span(span, "hours") for span in spans.split(",")]
        closed_dates = frozenset(parse_date(text, "hours_closed") for text in re.split(r"[,;\s]+", closed)
                                 if text.strip())
        special: dict[dt.date, list[Span]] = {}
        for rule in split_rules(open_dates):
            date_text, _, spans = rule.partition(" ")
            day = parse_date(date_text, "hours_open")
            if day in closed_dates:
                raise ValueError(f"hours_open: {day} is also listed in hours_closed")
            special.setdefault(day, [])
            special[day] += ([parse_span(span, "hours_open") for span in spans.split(",")] if spans.strip()
                             else [(0, MINUTES_PER_DAY)])
        return cls(tuple(tuple(sorted(spans)) for spans in weekly), closed_dates,
                   tuple(sorted((day, tuple(sorted(spans))) for day, spans in special.items())), zone.strip(),
                   load_zone(zone))

    def spans_on(self, day: dt.date) -> tuple[Span, ...]:
        """The openings that start on a calendar date: its own hours, none if closed, else the weekday's."""
        if day in self.closed_dates:
            return ()
        for special_day, spans in self.special:
            if special_day == day:
                return spans
        return self.weekly[day.weekday()]

    def instant(self, day: dt.date, minutes: int) -> float:
        """The Unix time of a local wall-clock time `minutes` after midnight of `day` (may pass into the next day)."""
        local = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minutes)
        return local.replace(tzinfo=self.zone).timestamp()  # tzinfo None: the machine's local time

    def local_date(self, instant: float) -> dt.date:
        return dt.datetime.fromtimestamp(instant, self.zone).date()

    def intervals(self, first_day: dt.date, days: int) -> Iterator[tuple[float, float, bool]]:
        """Merged openings (start, end, complete) of the openings starting on `days` dates from `first_day`, in
        order; complete is False for one still open at the end of the dates searched."""
        current: list[float] | None = None
        last_instant = self.instant(first_day + dt.timedelta(days=days), 0)
        for offset in range(days):
            day = first_day + dt.timedelta(days=offset)
            for start_minutes, end_minutes in self.spans_on(day):
                start, end = self.instant(day, start_minutes), self.instant(day, end_minutes)
                if end <= start:  # an opening inside a skipped hour
                    continue
                if current is not None and start <= current[1]:
                    current[1] = max(current[1], end)
                    continue
                if current is not None:
                    yield current[0], current[1], True
                current = [start, end]
        if current is not None:
            yield current[0], current[1], current[1] < last_instant

    def is_open(self, instant: float) -> bool:
        first = self.local_date(instant) - dt.timedelta(days=1)
        return any(start <= instant < end for start, end, _ in self.intervals(first, 3))

    def next_change(self, instant: float) -> float | None:
        """The next instant after `instant` when the piece opens or closes; None when it never changes."""
        first = self.local_date(instant) - dt.timedelta(days=1)
        for start, end, complete in self.intervals(first, SEARCH_DAYS):
            if start > instant:
                return start
            if instant < end:
                return end if complete else None
        return None

    def describe_instant(self, instant: float) -> str:
        local = dt.datetime.fromtimestamp(instant, self.zone)
        return local.strftime("%a %Y-%m-%d %H:%M ") + (self.zone_name or local.astimezone().tzname() or "local")


def schedule_from_config(config) -> OpeningHours | None:
    """The configured opening hours, or None when the piece is always open (no [hours] set)."""
    if not (config.hours.strip() or config.hours_open.strip()):
        if config.hours_closed.strip():
            raise ValueError("hours_closed needs opening hours (hours = ...) to make exceptions to")
        load_zone(config.hours_timezone)
        return None
    return OpeningHours.parse(config.hours, config.hours_closed, config.hours_open, config.hours_timezone)


OVERRIDES = ("open", "closed")


class OpeningGate:
    """Open or closed now: the schedule, or an override that lasts until the schedule's next change.

    Asked once a frame, so it caches the next change and recomputes only when the wall clock passes it (or goes
    back). `clock` is the wall clock (Unix time); tests inject one.
    """

    def __init__(self, hours: OpeningHours | None, clock: Callable[[], float] = time.time):
        self.hours, self.clock = hours, clock
        self.override_state: str | None = None
        self.override_until: float | None = None
        self.scheduled_open = True
        self.valid_from = self.valid_until = None  # the cached answer holds for valid_from <= now < valid_until

    def scheduled(self, now: float) -> bool:
        if self.hours is None:
            return True
        if self.valid_from is None or not self.valid_from <= now < (self.valid_until or float("inf")):
            self.scheduled_open = self.hours.is_open(now)
            self.valid_from, self.valid_until = now, self.hours.next_change(now)
        return self.scheduled_open

    def is_open(self) -> bool:
        now = self.clock()
        scheduled = self.scheduled(now)
        if self.override_state is not None:
            if self.override_until is None or now < self.override_until:
                return self.override_state == "open"
            self.override_state = self.override_until = None
        return scheduled

    def override(self, state: str | None) -> None:
        """Open or close now until the next scheduled change (state None: follow the schedule again)."""
        if state is not None and state not in OVERRIDES:
            raise ValueError(f"override {state!r} is not one of {', '.join(OVERRIDES)} or None")
        now = self.clock()
        self.scheduled(now)
        self.override_state = state
        self.override_until = self.hours.next_change(now) if state is not None and self.hours is not None else None

    def describe(self) -> str:
        """One line for the status: open or closed, why, and until when."""
        is_open = self.is_open()
        now = self.clock()
        if self.override_state is not None:
            until = self.override_until
            reason = "overridden"
        else:
            until = self.hours.next_change(now) if self.hours is not None else None
            reason = "schedule" if self.hours is not None else "no opening hours set"
        when = f" until {self.hours.describe_instant(until)}" if until is not None and self.hours else ""
        return f"{'open' if is_open else 'closed'} ({reason}){when}"


def check_hours(config) -> str:
    """`--check`: the schedule reads (the config already refused a bad one), the still loads; says what is next."""
    picture = closed_picture(config.closed_image)
    still = f", closed shows {config.closed_image} ({picture.shape[1]}x{picture.shape[0]})" if config.closed_image \
        else ", closed shows a black screen"
    return OpeningGate(config.opening_hours()).describe() + still


def closed_picture(path: str) -> np.ndarray:
    """What the screen shows outside the opening hours: the configured still, or black."""
    if not path:
        return np.zeros((64, 64, 3), np.uint8)
    picture = cv2.imread(path, cv2.IMREAD_COLOR)
    if picture is None:
        raise ValueError(f"closed_image = {path!r} cannot be read as an image (a PNG or JPEG file)")
    return np.ascontiguousarray(cv2.cvtColor(picture, cv2.COLOR_BGR2RGB))
