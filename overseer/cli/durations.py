"""Short human forms of time spans, as kubectl writes ages: "42s", "5m12s", "3h4m", "2d5h"."""

from __future__ import annotations


def short(seconds: float) -> str:
    """A span in at most two units; under a minute with one decimal, since jobs are short."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h"


def age(seconds: float) -> str:
    """An object's age, to the second: ages are read at a glance, not measured."""
    if seconds < 60:
        return f"{int(max(seconds, 0))}s"
    return short(seconds)
