"""Who is asking, and how often they may fail to log in.

``client_address``: the peer's address, or, when the peer is one of the configured reverse
proxies (nginx in front, TLS there), the right-most address in ``X-Forwarded-For`` that is not
itself a trusted proxy. A header from anyone else is ignored: a client cannot choose its own
address.

``LoginLimiter`` refuses a login (429 with Retry-After) after, within ``window_s``:
``max_failures`` failures for one (address, account), ``max_per_ip`` from one address whatever
the account, or ``max_per_account`` for one account from any address (slow distributed
guessing). ``MemoryLimiter`` keeps the counts in the process; ``RedisLimiter`` in Redis, so
several engine processes share them.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(text: str) -> tuple[Network, ...]:
    """``"127.0.0.1, 10.0.0.0/8"`` -> networks; ValueError names a bad entry."""
    nets: list[Network] = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            try:
                nets.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"not an address or network: {part!r}") from None
    return tuple(nets)


def _trusted(addr: str, proxies: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_address(conn: HTTPConnection, proxies: tuple[Network, ...] = ()) -> str:
    peer = conn.client.host if conn.client else "-"
    if not proxies or not _trusted(peer, proxies):
        return peer
    chain = [a.strip() for a in ",".join(conn.headers.getlist("x-forwarded-for")).split(",")]
    for addr in reversed([a for a in chain if a]):
        if not _trusted(addr, proxies):
            try:
                return str(ipaddress.ip_address(addr))
            except ValueError:
                return peer  # garbage in the header: the proxy's own address
    return peer


class LoginLimiter(Protocol):
    async def retry_after(self, ip: str, name: str) -> float | None:
        """Seconds to wait if this login attempt is refused now, else None."""

    async def failed(self, ip: str, name: str) -> None: ...

    async def succeeded(self, ip: str, name: str) -> None: ...


def _keys(ip: str, name: str) -> tuple[tuple[str, str], tuple[str, str], tuple[str, str]]:
    return (ip, name.lower()), (ip, ""), ("", name.lower())


class MemoryLimiter:
    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 300.0,
        *,
        max_per_ip: int = 50,
        max_per_account: int = 20,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_per_ip = max_per_ip
        self.max_per_account = max_per_account
        self.clock = clock
        self.max_keys = max_keys
        self._fails: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            return deque()
        cutoff = self.clock() - self.window_s
        while q and q[0] <= cutoff:
            q.popleft()
        if not q:
            del self._fails[key]
        return q

    async def retry_after(self, ip: str, name: str) -> float | None:
        limits = (self.max_failures, self.max_per_ip, self.max_per_account)
        for key, limit in zip(_keys(ip, name), limits, strict=True):
            q = self._recent(key)
            if len(q) >= limit:
                return max(1.0, q[0] + self.window_s - self.clock())
        return None

    async def failed(self, ip: str, name: str) -> None:
        if len(self._fails) >= self.max_keys:  # an attack with many names: forget the oldest
            self._fails.pop(next(iter(self._fails)))
        now = self.clock()
        for key in _keys(ip, name):
            self._fails.setdefault(key, deque()).append(now)

    async def succeeded(self, ip: str, name: str) -> None:
        self._fails.pop((ip, name.lower()), None)
        self._fails.pop(("", name.lower()), None)


class RedisLimiter:
    """The same counts in Redis sorted sets (one per key, scored by time, expiring with the
    window), shared by every engine process. A Redis failure lets the login through (and is
    logged by the caller's health): locking everyone out because Redis is away would be worse."""

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "tongdai:login",
        max_failures: int = 5,
        window_s: float = 300.0,
        max_per_ip: int = 50,
        max_per_account: int = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.window_s = window_s
        self.limits = (max_failures, max_per_ip, max_per_account)
        self.clock = clock

    def _name(self, key: tuple[str, str]) -> str:
        return f"{self.prefix}:{key[0]}|{key[1]}"

    async def retry_after(self, ip: str, name: str) -> float | None:
        now = self.clock()
        pipe = self.client.pipeline(transaction=False)
        for key in _keys(ip, name):
            pipe.zremrangebyscore(self._name(key), 0, now - self.window_s)
            pipe.zrange(self._name(key), 0, 0, withscores=True)
            pipe.zcard(self._name(key))
        results = await pipe.execute()
        for i, limit in enumerate(self.limits):
            oldest, count = results[3 * i + 1], results[3 * i + 2]
            if count >= limit and oldest:
                return max(1.0, float(oldest[0][1]) + self.window_s - now)
        return None

    async def failed(self, ip: str, name: str) -> None:
        now = self.clock()
        pipe = self.client.pipeline(transaction=False)
        for key in _keys(ip, name):
            pipe.zadd(self._name(key), {f"{now}:{secrets.token_hex(4)}": now})
            pipe.expire(self._name(key), int(self.window_s) + 1)
        await pipe.execute()

    async def succeeded(self, ip: str, name: str) -> None:
        await self.client.delete(self._name((ip, name.lower())), self._name(("", name.lower())))
