"""The AMI seam: what logic needs of an AMI connection, as small typed protocols.

``pbx.ami.AmiClient`` implements them on a real socket; ``pbx.fake.FakeAmi`` in memory for
unit tests. Domain code (the ACD, the app_queue follower, the web's supervisor actions) types
its AMI against these, never against the client class.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from pbx.ami_messages import HeaderValue


class AmiHeaders(Protocol):
    """One AMI event or response: a name and case-insensitive headers."""

    @property
    def name(self) -> str: ...

    def get(self, key: str, default: str | None = None, /) -> str | None: ...


class AmiReply(AmiHeaders, Protocol):
    """A response; a list action's events (``CoreShowChannels``...) in ``events``."""

    @property
    def events(self) -> Sequence[AmiHeaders]: ...


class AmiActions(Protocol):
    async def action(
        self, name: str, /, *, action_timeout: float | None = None, **headers: HeaderValue
    ) -> AmiReply:
        """Send one action and wait for its whole response; ``AmiError`` when it fails, times
        out (``action_timeout``, else the connection's default) or the connection is down
        (nothing is queued for later)."""


class AmiEventSource(Protocol):
    def subscribe(self, names: Sequence[str] | None = None) -> AsyncIterator[AmiHeaders]:
        """Events from now on (only ``names`` if given), in the order Asterisk sent them;
        ``__connected__`` after every (re)connection."""


class AmiPort(AmiActions, AmiEventSource, Protocol):
    """Actions and events over one connection."""
