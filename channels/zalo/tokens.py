"""The OA's access token and the refresh token that renews it, kept in two files.

Zalo OA access tokens live 25 hours (``expires_in`` in the refresh answer); a refresh token
is used once and replaced. Renewal (Zalo's OAuth v4, as Chatwoot does it in
``app/models/channel/zalo_oa.rb``, ``refresh_access_token``)::

    POST {oauth_base}/v4/oa/access_token          header secret_key: <app secret>
    form refresh_token=..., app_id=..., grant_type=refresh_token
    -> {"access_token": "...", "refresh_token": "...", "expires_in": "90000"}
    -> {"error": -14014, "error_name": "...", "error_description": "..."} when refused

``ZaloTokens.access_token`` renews ahead of expiry (``margin_s`` before it), ``renew(stale)``
after the API answered "expired" for ``stale``. Both run under one lock and renew only if the
token is still the one the caller saw, so concurrent sends refresh once. The expiry is the
access token file's modification time plus the last ``expires_in`` (25 h until one is known).

The new pair is written refresh token first (the old one is now spent: losing the new one
would lock the OA out until an administrator reconnects it), then the access token; each
file atomically (``channels.webhooks.write_secret``, mode 0600). Files changed by hand are
re-read at the next send.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from channels.outbound import one_line, retry_after
from channels.webhooks import load_json, read_secret, write_secret
from channels.zalo.settings import ZaloSettings

log = logging.getLogger(__name__)

#: Zalo OA access tokens are valid 25 hours (90000 s)
DEFAULT_TTL_S = 90_000.0


class RefreshFailed(Exception):
    """The refresh did not give a new pair. ``retry``: worth trying again later (network,
    5xx, 429); else an administrator must act (refresh token refused)."""

    def __init__(self, reason: str, *, retry: bool, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.retry_after_s = retry_after_s


@dataclass
class _Loaded:
    access: str
    refresh: str
    stamp: tuple[int, int, int, int]  # (mtime_ns, size) of both files
    mtime: float  # of the access token file


class ZaloTokens:
    def __init__(
        self,
        cfg: ZaloSettings,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        margin_s: float = 300.0,
        pause_after_failure_s: float = 60.0,
    ) -> None:
        self.cfg = cfg
        self.client = client
        self.clock = clock
        self.margin_s = margin_s
        self.pause_after_failure_s = pause_after_failure_s
        self.ttl_s = DEFAULT_TTL_S
        self.refreshes = 0
        self._lock = asyncio.Lock()
        self._loaded: _Loaded | None = None
        self._failed_at: float | None = None

    def _stamp(self) -> tuple[int, int, int, int]:
        a = os.stat(self.cfg.access_token_file)
        r = os.stat(self.cfg.refresh_token_file)
        return (a.st_mtime_ns, a.st_size, r.st_mtime_ns, r.st_size)

    def _load(self) -> _Loaded:
        """The pair as on disk (re-read when a file changed since the last read)."""
        stamp = self._stamp()
        if self._loaded is None or self._loaded.stamp != stamp:
            self._loaded = _Loaded(
                read_secret(self.cfg.access_token_file),
                read_secret(self.cfg.refresh_token_file),
                stamp,
                stamp[0] / 1e9,
            )
        return self._loaded

    def expires_at(self) -> float:
        return self._load().mtime + self.ttl_s

    async def access_token(self) -> str:
        """The access token to use now, renewed first when it expires within ``margin_s``. A
        failed early renewal is logged and the current token used (it may still work); the
        next early attempt waits ``pause_after_failure_s``."""
        current = self._load().access
        if self.clock() < self.expires_at() - self.margin_s:
            return current
        if (
            self._failed_at is not None
            and self.clock() - self._failed_at < self.pause_after_failure_s
        ):
            return current
        try:
            return await self.renew(current)
        except RefreshFailed as exc:
            log.warning("zalo: early token renewal failed: %s", exc.reason)
            return current

    async def renew(self, stale: str) -> str:
        """A fresh access token after ``stale`` was refused or is about to expire; renews only
        if nobody already did. Raises ``RefreshFailed``."""
        async with self._lock:
            loaded = self._load()
            if loaded.access != stale:
                return loaded.access
            try:
                access, refresh, ttl = await self._post(loaded.refresh)
            except RefreshFailed:
                self._failed_at = self.clock()
                raise
            try:
                write_secret(self.cfg.refresh_token_file, refresh)
                write_secret(self.cfg.access_token_file, access)
                stamp = self._stamp()
            except OSError as exc:
                log.error(
                    "zalo: the renewed tokens could not be saved (%s): kept in memory only; "
                    "if the engine stops before the next renewal the OA must be reconnected",
                    exc.strerror or exc,
                )
                stamp = loaded.stamp
            self.ttl_s = ttl
            self._failed_at = None
            self.refreshes += 1
            self._loaded = _Loaded(access, refresh, stamp, self.clock())
            log.info("zalo: access token renewed (valid %.0f s)", ttl)
            return access

    async def _post(self, refresh_token: str) -> tuple[str, str, float]:
        url = f"{self.cfg.oauth_base}/v4/oa/access_token"
        try:
            resp = await self.client.post(
                url,
                data={
                    "refresh_token": refresh_token,
                    "app_id": self.cfg.app_id,
                    "grant_type": "refresh_token",
                },
                headers={"secret_key": read_secret(self.cfg.app_secret_file)},
                timeout=self.cfg.http_timeout_s,
            )
        except httpx.HTTPError as exc:
            raise RefreshFailed(
                f"token renewal: network: {type(exc).__name__}", retry=True
            ) from None
        if resp.status_code == 429 or resp.status_code >= 500:
            wait = retry_after(resp.headers)
            raise RefreshFailed(
                f"token renewal: HTTP {resp.status_code}", retry=True, retry_after_s=wait
            )
        doc = load_json(resp.content)
        doc = doc if isinstance(doc, dict) else {}
        access, refresh = doc.get("access_token"), doc.get("refresh_token")
        if isinstance(access, str) and access and isinstance(refresh, str) and refresh:
            return access, refresh, _ttl(doc.get("expires_in"))
        why = doc.get("error_description") or doc.get("error_name") or doc.get("message")
        reason = one_line(f"{why}" if why else f"HTTP {resp.status_code}", 120)
        raise RefreshFailed(
            f"Zalo từ chối gia hạn token ({reason}): quản trị viên cần kết nối lại OA / "
            f"Zalo refused to renew the token ({reason}): an administrator must reconnect the OA",
            retry=False,
        )


def _ttl(value: object) -> float:
    try:
        ttl = float(value) if isinstance(value, str | int) and not isinstance(value, bool) else 0.0
    except ValueError:
        ttl = 0.0
    return ttl if 60.0 <= ttl <= 10 * DEFAULT_TTL_S else DEFAULT_TTL_S
