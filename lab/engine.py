"""The lab's engine process (``tongdai serve``) and the data it needs before calls arrive.

``lab up`` builds the Vietnamese prompts, seeds the dossier table from the sample CSV when it
is empty, then starts ``python -m hotline.cli serve`` detached and waits until its FastAGI
port accepts connections. The engine's modules are imported lazily: the lab must stay usable
(``--no-engine``) while they are being written or broken. When this process holds the lab lock
(``lab.lock``), the engine inherits it too: the lab's ports stay guarded while either runs.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from lab import lock, procs
from lab.procs import LabError
from tongdai.settings import PROJECT_HOME, Settings, home_path

ENGINE_MARKERS = ("hotline.cli", "serve")
ENGINE_TIMEOUT = 30.0
T = TypeVar("T")
SAMPLE_DOSSIERS = "dossiers/sample_dossiers.csv"
SAMPLE_PROCEDURES = "dossiers/sample_procedures_quangnam.csv"
_TCP_LISTEN = "0A"  # socket state in /proc/net/tcp


def pid_file(settings: Settings) -> Path:
    return home_path(settings.lab.var_dir) / "engine.pid"


def log_file(settings: Settings) -> Path:
    return home_path(settings.lab.var_dir) / "engine.log"


def agi_address(settings: Settings) -> tuple[str, int]:
    """Where Asterisk (and the lab) reach the FastAGI server."""
    host = settings.fastagi.host
    return ("127.0.0.1" if host in ("", "0.0.0.0") else host, settings.fastagi.port)


def tcp_listening(host: str, port: int) -> bool:
    """True if a socket listens on host:port (or on all addresses), per /proc/net/tcp.

    Read from the kernel's table rather than by connecting: a probe connection would show up
    in the engine's log as a dropped FastAGI session.
    """
    wanted = {f"{port:04X}"}
    try:
        packed = socket.inet_aton(host)
    except OSError:
        return False
    addresses = {packed[::-1].hex().upper(), "00000000"}
    try:
        with open("/proc/net/tcp", encoding="ascii") as fh:
            rows = [line.split() for line in fh.readlines()[1:]]
    except FileNotFoundError:
        return False
    for row in rows:
        address, _, hex_port = row[1].partition(":")
        if row[3] == _TCP_LISTEN and hex_port in wanted and address in addresses:
            return True
    return False


def engine_argv(config_path: str | None) -> list[str]:
    """``python -m hotline.cli [--config FILE] serve`` with this interpreter."""
    config = ["--config", str(Path(config_path).resolve())] if config_path else []
    return [sys.executable, "-m", "hotline.cli", *config, "serve"]


def running_pid(settings: Settings) -> int | None:
    return procs.running_pid(pid_file(settings), ENGINE_MARKERS)


def start_engine(
    settings: Settings, config_path: str | None, timeout: float = ENGINE_TIMEOUT
) -> int:
    """Start ``tongdai serve`` detached; return its pid once FastAGI accepts connections."""
    pid = running_pid(settings)
    if pid is not None:
        return pid
    if importlib.util.find_spec("hotline.serve") is None:
        raise LabError("hotline.serve is not installed yet: run `tongdai lab up --no-engine`")
    host, port = agi_address(settings)
    if tcp_listening(host, port):
        raise LabError(
            f"something not started by `tongdai lab` already listens on FastAGI {host}:{port}"
        )
    log = log_file(settings)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"=== tongdai lab: starting the engine {time.strftime('%F %T')} ===\n")
    pid = procs.start_detached(
        engine_argv(config_path),
        pid_file=pid_file(settings),
        log_file=log,
        cwd=PROJECT_HOME,
        keep_fds=lock.held_fds(settings),
    )
    deadline = time.monotonic() + timeout
    while not tcp_listening(host, port):
        if not procs.alive(pid):
            pid_file(settings).unlink(missing_ok=True)
            raise LabError(
                f"the engine exited during start-up; end of {log}:\n" + procs.log_tail(log)
            )
        if time.monotonic() >= deadline:
            procs.stop(pid_file(settings), ENGINE_MARKERS)
            raise LabError(
                f"the engine did not accept FastAGI connections on {host}:{port} within "
                f"{timeout:.0f} s; end of {log}:\n" + procs.log_tail(log)
            )
        time.sleep(0.2)
    return pid


def stop_engine(settings: Settings, timeout: float = 10.0) -> bool:
    """Stop the engine the lab started (SIGTERM, then SIGKILL); True if it was running."""
    return procs.stop(pid_file(settings), ENGINE_MARKERS, timeout=timeout)


def build_prompts(settings: Settings) -> str:
    """Synthesize missing prompts (``ivr.prompts.ensure_built``); returns its summary. One
    build at a time on this machine: labs side by side share the checkout's prompts."""
    try:
        from ivr import prompts
    except ImportError as exc:
        raise LabError(f"cannot build prompts: ivr.prompts is not importable ({exc})") from exc
    with lock.exclusive("prompts"):
        return prompts.ensure_built(settings).summary()


async def _seed(
    url: str,
    table: Any,
    rows: Callable[[], list[T]],
    upsert: Callable[[Any, list[T]], Awaitable[int]],
) -> list[T]:
    """Upsert ``rows()`` into ``table`` if it is empty; the rows stored ([] if none)."""
    from sqlalchemy import func, select

    from tongdai.db import make_engine, upgrade_engine

    engine = make_engine(url)
    try:
        await upgrade_engine(engine)
        async with engine.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
        if count:
            return []
        stored = rows()
        await upsert(engine, stored)
        return stored
    finally:
        await engine.dispose()


def _needs(what: str, *modules: str) -> None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise LabError(f"cannot seed {what}: {module} is not installed yet")


def seed_dossiers(settings: Settings) -> int:
    """Import the sample dossiers if the table is empty; returns how many were imported."""
    _needs("dossiers", "dossiers.importer", "dossiers.sql", "tongdai.db")
    try:
        from dossiers.importer import read_dossiers
        from dossiers.sql import D, upsert_dossiers

        url = settings.database.resolved_url()
        path = home_path(SAMPLE_DOSSIERS)
        return len(asyncio.run(_seed(url, D, lambda: read_dossiers(path), upsert_dossiers)))
    except ImportError as exc:
        raise LabError(f"cannot seed dossiers: {exc}") from exc


def seed_procedures(settings: Settings) -> int:
    """Import the sample procedure catalogue if the table is empty, and speak its names for
    the IVR (under the prompts lock); returns how many were imported."""
    _needs("procedures", "dossiers.procedures_csv", "dossiers.procedures_sql", "ivr.prompts")
    try:
        from dossiers.procedures_csv import read_procedures
        from dossiers.procedures_sql import P, upsert_procedures
        from ivr.prompts import PROCEDURE_DIR, build_names, procedure_names

        url = settings.database.resolved_url()
        path = home_path(SAMPLE_PROCEDURES)
        stored = asyncio.run(_seed(url, P, lambda: read_procedures(path), upsert_procedures))
        if stored:
            with lock.exclusive("prompts"):
                build_names(procedure_names(stored), settings, PROCEDURE_DIR, str(path))
        return len(stored)
    except ImportError as exc:
        raise LabError(f"cannot seed procedures: {exc}") from exc
