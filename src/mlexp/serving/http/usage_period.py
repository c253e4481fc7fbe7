"""Usage-plan periods (UTC): which period a moment falls in and how long until it ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

PERIODS = ("day", "month")


def period_label(period: str, now: datetime) -> str:
    """The period `now` falls in: '2026-12' for a month, '2026-12-02' for a day."""
    # formatted by hand: strftime was a tenth of the cost of a key check
    month = f"{now.year:04d}-{now.month:02d}"
    return month if period == "month" else f"{month}-{now.day:02d}"


def period_end(period: str, now: datetime) -> datetime:
    """The first moment of the next period (calendar month or day, UTC)."""
    if period == "day":
        return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def seconds_to_end(period: str, now: datetime) -> int:
    """Whole seconds until the period ends, at least 1 (the value of a 429's Retry-After)."""
    return max(1, int((period_end(period, now) - now).total_seconds() + 0.999))


def utc_now() -> datetime:
    return datetime.now(UTC)
