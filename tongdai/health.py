"""What the engine depends on, and whether each is reachable now: the degraded states a
supervisor must see (``/metrics``, ``/api/health``, the wallboard's banner, ``tongdai lab
status``, the log).

Components report with ``up(name)`` / ``down(name, why)``; a change is logged once, not at
every retry, and each change is handed to the ``listeners`` (the web app's live banner, the
engine's health file). Readers take ``snapshot()``: name -> (up, detail, since), or
``to_json()``. ``write_file`` / ``read_file`` carry the same view to another process (``tongdai
lab status`` reads what the running engine wrote).

Names the engine uses: ``database`` (PostgreSQL/SQLite: tickets, accounts), ``redis`` (the
ACD's shared state and the login limiter), ``asterisk`` (the AMI session).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tongdai.clock import VN_TZ

log = logging.getLogger(__name__)

#: what a dependency is, and what the hotline does while it is away (Vietnamese, for the
#: wallboard's banner)
LABELS_VI: dict[str, tuple[str, str]] = {
    "database": (
        "Cơ sở dữ liệu",
        "phiếu được lưu tạm trên máy chủ và tự ghi lại khi kết nối trở lại",
    ),
    "redis": (
        "Redis (trạng thái phân phối cuộc gọi)",
        "phân phối cuộc gọi tiếp tục trong bộ nhớ, tự đồng bộ khi Redis trở lại",
    ),
    "asterisk": (
        "Tổng đài Asterisk (AMI)",
        "không phân phối được cuộc gọi đến tổng đài viên cho đến khi kết nối lại",
    ),
}


@dataclass(frozen=True)
class Dependency:
    up: bool
    detail: str
    since: float


Listener = Callable[[str, Dependency], None]


class Health:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._deps: dict[str, Dependency] = {}
        self._clock = clock
        #: called after every change (a new dependency, up -> down, down -> up), in the
        #: reporter's thread; a failing listener is logged and never stops the others
        self.listeners: list[Listener] = []
        #: facts about this process shown beside the dependencies in ``to_json`` (e.g. the
        #: ACD role under failover: ``{"acd": {"role": "leader", "epoch": 3}}``)
        self.facts: dict[str, Any] = {}

    def up(self, name: str, detail: str = "") -> None:
        self._set(name, True, detail)

    def down(self, name: str, detail: str) -> None:
        self._set(name, False, detail)

    def _set(self, name: str, ok: bool, detail: str) -> None:
        old = self._deps.get(name)
        if old is not None and old.up == ok:
            if not ok:
                self._deps[name] = Dependency(ok, detail, old.since)
            return
        dep = Dependency(ok, detail, self._clock())
        self._deps[name] = dep
        if ok and old is not None:
            log.warning("%s is back%s", name, f": {detail}" if detail else "")
        elif not ok:
            log.error("%s is DOWN: %s (working degraded)", name, detail)
        for listener in list(self.listeners):
            try:
                listener(name, dep)
            except Exception:  # a broken observer must not hide the change from the others
                log.exception("health listener %r failed", listener)

    def snapshot(self) -> dict[str, Dependency]:
        return dict(self._deps)

    @property
    def degraded(self) -> list[str]:
        """Names of what is down now."""
        return sorted(n for n, d in self._deps.items() if not d.up)

    def to_json(self) -> dict[str, Any]:
        """``{"status": "ok"|"degraded", "down": [...], "dependencies": [...]}`` (sorted by
        name; ``since`` in epoch seconds, when the current state began)."""
        return {**health_json(self._deps, self._clock()), **self.facts}

    def write_file(self, path: Path) -> None:
        """The current view, atomically (another process reads it), with this process's pid."""
        data = {**self.to_json(), "pid": os.getpid()}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)


def health_json(deps: dict[str, Dependency], now: float) -> dict[str, Any]:
    down = sorted(n for n, d in deps.items() if not d.up)
    return {
        "status": "degraded" if down else "ok",
        "at": now,
        "down": down,
        "dependencies": [
            {"name": n, "up": d.up, "detail": d.detail, "since": d.since}
            for n, d in sorted(deps.items())
        ],
    }


def read_file(path: Path) -> dict[str, Any] | None:
    """What ``Health.write_file`` wrote, or None if there is no readable file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def banner_vi(deps: dict[str, Dependency]) -> list[dict[str, Any]]:
    """The wallboard banner's lines: one per dependency down, in Vietnamese."""
    lines = []
    for name, d in sorted(deps.items()):
        if d.up:
            continue
        label, effect = LABELS_VI.get(name, (name, "một số chức năng tạm ngừng"))
        since_vi = datetime.fromtimestamp(d.since, VN_TZ).strftime("%H:%M:%S %d/%m/%Y")
        lines.append(
            {
                "name": name,
                "label": label,
                "effect": effect,
                "since": d.since,
                "since_vi": since_vi,
                "detail": d.detail,
            }
        )
    return lines
