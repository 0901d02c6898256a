"""What an Asterisk channel's uniqueid says by itself.

Asterisk makes a uniqueid as ``[systemname-]EPOCH.N``: the epoch second the channel was created,
then a counter of channels made since Asterisk started. The creation second is what a caller's
place in line is kept by when an engine that lost the caller (a crash, a SIGKILL) takes them
back: it survives the engine, it needs no AMI round trip, and every node reads the same value.
"""

from __future__ import annotations


def channel_started(uniqueid: str) -> float | None:
    """When Asterisk created the channel (epoch seconds), or None if ``uniqueid`` is not of
    Asterisk's shape (a test's made-up id, an empty string)."""
    stamp = uniqueid.rsplit("-", 1)[-1]
    secs, dot, counter = stamp.partition(".")
    if not dot or not secs.isdigit() or not counter.isdigit():
        return None
    return float(secs)
