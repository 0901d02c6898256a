"""Failed-login limits (per address and account, per address, per account across addresses;
in memory and shared in Redis) and the client's address behind a reverse proxy."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis
from starlette.requests import Request

from web.limits import LoginLimiter, MemoryLimiter, RedisLimiter, client_address, parse_proxies

NOW = {"t": 1_000_000.0}


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make_limiter(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Callable[..., LoginLimiter]]:
    clients: list[aioredis.Redis] = []

    def make(**kw: float) -> LoginLimiter:
        if request.param == "memory":
            return MemoryLimiter(clock=lambda: NOW["t"], **kw)  # type: ignore[arg-type]
        client = aioredis.from_url("redis://127.0.0.1:6379/0")
        clients.append(client)
        prefix = f"test:login:{secrets.token_hex(4)}"
        return RedisLimiter(client, prefix=prefix, clock=lambda: NOW["t"], **kw)  # type: ignore[arg-type]

    yield make
    for c in clients:
        await c.aclose()


async def test_five_failures_for_one_account_from_one_address_then_refused_for_the_window(
    make_limiter: Callable[..., LoginLimiter],
) -> None:
    NOW["t"] = 1_000_000.0
    limiter = make_limiter(max_failures=5, window_s=300)
    for _ in range(5):
        assert await limiter.retry_after("1.2.3.4", "lan") is None
        await limiter.failed("1.2.3.4", "lan")
    wait = await limiter.retry_after("1.2.3.4", "LAN")
    assert wait is not None and 299 <= wait <= 300
    assert await limiter.retry_after("1.2.3.5", "lan") is None  # another address
    assert await limiter.retry_after("1.2.3.4", "minh") is None  # another name
    NOW["t"] += 301
    assert await limiter.retry_after("1.2.3.4", "lan") is None


async def test_slow_guessing_from_many_addresses_locks_the_account_not_the_addresses(
    make_limiter: Callable[..., LoginLimiter],
) -> None:
    NOW["t"] = 2_000_000.0
    limiter = make_limiter(max_failures=5, max_per_account=20, window_s=300)
    for i in range(20):
        await limiter.failed(f"10.0.0.{i}", "giamsat")
    assert await limiter.retry_after("10.0.1.1", "giamsat") is not None
    assert await limiter.retry_after("10.0.1.1", "lan") is None
    await limiter.succeeded("10.0.1.1", "giamsat")  # the owner's good password clears it
    assert await limiter.retry_after("10.0.1.1", "giamsat") is None


async def test_two_processes_share_the_counts_in_redis() -> None:
    pytest.importorskip("redis")
    prefix = f"test:login:{secrets.token_hex(4)}"
    a = aioredis.from_url("redis://127.0.0.1:6379/0")
    b = aioredis.from_url("redis://127.0.0.1:6379/0")
    try:
        one = RedisLimiter(a, prefix=prefix, max_failures=3)
        two = RedisLimiter(b, prefix=prefix, max_failures=3)
        for _ in range(3):
            await one.failed("1.1.1.1", "lan")
        assert await two.retry_after("1.1.1.1", "lan") is not None
    finally:
        await a.aclose()
        await b.aclose()


def _request(peer: str, xff: str | None) -> Request:
    headers = [(b"x-forwarded-for", xff.encode())] if xff is not None else []
    return Request({"type": "http", "client": (peer, 5555), "headers": headers})


def test_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    proxies = parse_proxies("127.0.0.1, 10.1.0.0/16")
    assert client_address(_request("127.0.0.1", "203.0.113.9"), proxies) == "203.0.113.9"
    # spoofed entries on the left are ignored: the right-most untrusted hop is the client
    assert client_address(_request("127.0.0.1", "1.1.1.1, 203.0.113.9, 10.1.2.3"), proxies) == (
        "203.0.113.9"
    )
    assert client_address(_request("198.51.100.7", "203.0.113.9"), proxies) == "198.51.100.7"
    assert client_address(_request("127.0.0.1", "garbage"), proxies) == "127.0.0.1"
    assert client_address(_request("127.0.0.1", "203.0.113.9"), ()) == "127.0.0.1"
    with pytest.raises(ValueError, match="not an address"):
        parse_proxies("127.0.0.1, nope")
