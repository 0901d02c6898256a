"""Agents' call recordings linked to their tickets.

A queue with ``record = true`` (ACD file) gets ``TONGDAI_RECORD = <calls dir>/<ticket code>``
from the IVR; the dialplan's ``[tongdai-record]`` starts MixMonitor on the agent's leg when the
agent answers - on our ACD's direct dial, its Originate + Bridge, and app_queue's ``Queue()`` -
and raises ``UserEvent(TongdaiRecording, File: <path>.wav)``. ``link_recordings`` follows those
events on AMI and writes the file's host path into the ticket's ``recording``, so the ticket page
plays it (``web.pages_tickets``, supervisors and admins only, every play audited) and
``tongdai purge`` deletes it with the ticket's other recordings after ``[retention]``.

Only files named ``<ticket code>.wav`` directly in Asterisk's calls folder are linked; anything
else is logged and ignored (the event's text is Asterisk's, but a misconfigured dialplan must
not make the engine point a ticket at an arbitrary path).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath

from pbx.ami_messages import AmiEvent
from tickets.codes import CODE_RE
from tickets.store import TicketStore
from tongdai.errors import StoreError

log = logging.getLogger(__name__)

#: the dialplan's event (``[tongdai-record]`` in extensions.conf)
EVENT = "TongdaiRecording"


def host_path(asterisk_file: str, asterisk_dir: str, host_dir: Path) -> tuple[str, Path] | None:
    """``(ticket code, host path)`` for a recording Asterisk wrote as ``asterisk_file``, or None
    if it is not ``<asterisk_dir>/<ticket code>.wav``."""
    f = PurePosixPath(asterisk_file)
    if f.parent != PurePosixPath(asterisk_dir) or f.suffix != ".wav":
        return None
    code = f.stem
    if not CODE_RE.match(code):
        return None
    return code, host_dir / f.name


async def link_one(
    ev: AmiEvent, tickets: TicketStore, asterisk_dir: str, host_dir: Path
) -> str | None:
    """Link the recording one ``TongdaiRecording`` event announces; the ticket code, or None."""
    if ev.name != "UserEvent" or (ev.get("UserEvent") or "") != EVENT:
        return None
    announced = ev.get("File") or ""
    found = host_path(announced, asterisk_dir, host_dir)
    if found is None:
        log.warning("recording %r not <ticket code>.wav in %s: ignored", announced, asterisk_dir)
        return None
    code, path = found
    try:
        if await tickets.get(code) is None:
            log.warning("recording %s: no ticket %s", path, code)
            return None
        await tickets.update(code, recording=str(path))
    except StoreError as exc:
        log.error("recording %s not linked to %s: %s", path, code, exc)
        return None
    log.info("ticket %s: call recorded in %s", code, path)
    return code


async def link_recordings(
    events: AsyncIterator[AmiEvent], tickets: TicketStore, asterisk_dir: str, host_dir: Path
) -> None:
    """Follow ``UserEvent`` on AMI and link every announced recording (the engine's task)."""
    async for ev in events:
        await link_one(ev, tickets, asterisk_dir, host_dir)
