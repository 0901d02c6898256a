"""The accounts store: users with roles, argon2 passwords, browser sessions, API tokens.

A session cookie and an API token are random values; the database keeps only their SHA-256
(they have 256 bits of entropy, so a slow hash adds nothing). Passwords are hashed with argon2id
in a worker thread: hashing takes tens of milliseconds and the event loop also runs the calls.
There is no default account: ``tongdai users add`` creates them, the lab may create demo ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    Boolean,
    ForeignKey,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    false,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from accounts.model import (
    TOKEN_PREFIX,
    AccountInfo,
    Role,
    User,
    check_agency,
    check_new_user,
    check_password,
    check_phone,
    check_role,
)
from tongdai.clock import utcnow
from tongdai.db import DB_ERRORS, Base, UtcDateTime, store_error


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("name", name="uq_users_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(Text)
    agent_id: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(80))
    display_name: Mapped[str | None] = mapped_column(String(120))
    agency_id: Mapped[str | None] = mapped_column(String(32))
    disabled: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SessionRow(Base):
    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TokenRow(Base):
    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


U = cast(Table, UserRow.__table__)
WS = cast(Table, SessionRow.__table__)
TK = cast(Table, TokenRow.__table__)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def session_key(cookie: str) -> str:
    """How the database (and the live hub) name a session: the SHA-256 of its cookie value."""
    return _digest(cookie)


def _user(row: Row[Any]) -> User:
    return User(
        row.id, row.name, Role(row.role), row.agent_id, row.phone, row.display_name,
        row.agency_id,
    )  # fmt: skip


def _info(row: Row[Any]) -> AccountInfo:
    return AccountInfo(
        _user(row), bool(row.disabled), row.password_hash is not None, row.created_at
    )


class AuthStore:
    """Users, sessions and tokens on the project's database."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        hasher: PasswordHasher | None = None,
        session_ttl: timedelta = timedelta(hours=12),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.hasher = hasher or PasswordHasher()
        self.session_ttl = session_ttl
        self.clock = clock
        self._dummy: str | None = None  # verified against for unknown names (same timing)

    async def _run(self, what: str, query: Any) -> Any:
        try:
            async with self.engine.begin() as conn:
                return await conn.execute(query)
        except DB_ERRORS as exc:
            raise store_error(f"accounts: {what}", exc) from exc

    async def add_user(
        self,
        name: str,
        role: str,
        password: str | None,
        *,
        agent_id: str | None = None,
        phone: str | None = None,
        display_name: str | None = None,
        agency_id: str | None = None,
    ) -> User:
        """Create an account; ValueError for a bad field or a name already taken."""
        checked = check_new_user(name, role, phone, agency_id)
        hashed = None
        if password is not None:
            check_password(password)
            hashed = await asyncio.to_thread(self.hasher.hash, password)
        if await self.get_user(name) is not None:
            raise ValueError(f"user {name!r} exists already")
        row = (
            await self._run(
                f"cannot add user {name}",
                insert(U)
                .values(
                    name=name,
                    role=checked.value,
                    password_hash=hashed,
                    agent_id=agent_id,
                    phone=phone,
                    display_name=display_name,
                    agency_id=agency_id,
                    disabled=False,
                    created_at=self.clock(),
                )
                .returning(*U.c),
            )
        ).one()
        return _user(row)

    async def set_password(self, name: str, password: str) -> None:
        check_password(password)
        hashed = await asyncio.to_thread(self.hasher.hash, password)
        result = await self._run(
            f"cannot set the password of {name}",
            update(U).where(U.c.name == name).values(password_hash=hashed),
        )
        if result.rowcount == 0:
            raise KeyError(name)

    async def accounts(self) -> list[AccountInfo]:
        """Every account, disabled ones too, by name."""
        rows = (await self._run("cannot list users", select(U).order_by(U.c.name))).all()
        return [_info(r) for r in rows]

    async def account(self, name: str) -> AccountInfo | None:
        row = (await self._run("cannot read users", select(U).where(U.c.name == name))).first()
        return _info(row) if row is not None else None

    async def update_user(self, name: str, **changes: Any) -> AccountInfo:
        """Change ``role``, ``disabled``, ``display_name``, ``agent_id``, ``phone`` or
        ``agency_id`` (None clears the last four; an ``agency`` account needs its agency).
        ValueError for a bad value, KeyError for an unknown account.
        Disabling an account also ends its sessions."""
        allowed = {"role", "disabled", "display_name", "agent_id", "phone", "agency_id"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))}")
        values = dict(changes)
        if "role" in values:
            values["role"] = check_role(str(values["role"])).value
        if "role" in values or "agency_id" in values:
            before = await self.account(name)
            if before is None:
                raise KeyError(name)
            role = Role(values.get("role", before.user.role))
            agency = values.get("agency_id", before.user.agency_id)
            if role is not Role.AGENCY and "agency_id" not in values:
                agency = values["agency_id"] = None  # leaving the agency role
            check_agency(role, agency)
        if "phone" in values:
            check_phone(values["phone"])
        if "disabled" in values:
            values["disabled"] = bool(values["disabled"])
        if values:
            result = await self._run(
                f"cannot change user {name}", update(U).where(U.c.name == name).values(**values)
            )
            if result.rowcount == 0:
                raise KeyError(name)
        if values.get("disabled"):
            await self.end_user_sessions(name)
        found = await self.account(name)
        if found is None:
            raise KeyError(name)
        return found

    async def end_user_sessions(self, name: str) -> int:
        """End every browser session of ``name`` (after a password reset, or disabled)."""
        ids = select(U.c.id).where(U.c.name == name).scalar_subquery()
        result = await self._run(
            f"cannot end the sessions of {name}", delete(WS).where(WS.c.user_id == ids)
        )
        return int(result.rowcount)

    async def get_user(self, name: str) -> User | None:
        row = (await self._run("cannot read users", select(U).where(U.c.name == name))).first()
        return _user(row) if row is not None and not row.disabled else None

    async def users(self) -> list[User]:
        rows = (await self._run("cannot list users", select(U).order_by(U.c.name))).all()
        return [_user(r) for r in rows if not r.disabled]

    async def login(self, name: str, password: str) -> User | None:
        """The user if the password is right (argon2 in a thread); None otherwise."""
        row = (await self._run("cannot read users", select(U).where(U.c.name == name))).first()
        stored = row.password_hash if row is not None and not row.disabled else None
        if stored is None:
            if self._dummy is None:
                self._dummy = await asyncio.to_thread(self.hasher.hash, secrets.token_hex(16))
            await asyncio.to_thread(self._verify, self._dummy, password)
            return None
        if not await asyncio.to_thread(self._verify, stored, password):
            return None
        if self.hasher.check_needs_rehash(stored):
            await self.set_password(name, password)
        return _user(row)

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self.hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    # -- sessions ----------------------------------------------------------------------------

    async def new_session(self, user: User) -> tuple[str, str]:
        """A new browser session: (cookie value, CSRF token)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock()
        await self._run(
            "cannot open a session",
            insert(WS).values(
                id=_digest(token),
                user_id=user.id,
                csrf=csrf,
                created_at=now,
                expires_at=now + self.session_ttl,
            ),
        )
        return token, csrf

    async def session(self, token: str) -> tuple[User, str] | None:
        """The session's user and CSRF token, if the session exists and has not expired."""
        query = (
            select(U, WS.c.csrf)
            .join(WS, WS.c.user_id == U.c.id)
            .where(WS.c.id == _digest(token), WS.c.expires_at > self.clock())
            .where(U.c.disabled == false())
        )
        row = (await self._run("cannot read the session", query)).first()
        return (_user(row), str(row.csrf)) if row is not None else None

    async def end_session(self, token: str) -> None:
        await self._run("cannot end the session", delete(WS).where(WS.c.id == _digest(token)))

    async def purge_sessions(self) -> int:
        result = await self._run(
            "cannot purge sessions", delete(WS).where(WS.c.expires_at <= self.clock())
        )
        return int(result.rowcount)

    # -- API tokens --------------------------------------------------------------------------

    async def new_token(self, name: str, label: str | None = None) -> str:
        """A new API token for ``name`` (shown once; only its hash is kept)."""
        user = await self.get_user(name)
        if user is None:
            raise KeyError(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        await self._run(
            "cannot store the token",
            insert(TK).values(
                user_id=user.id, token_hash=_digest(token), label=label, created_at=self.clock()
            ),
        )
        return token

    async def token_user(self, token: str) -> User | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
            return None
        query = (
            select(U)
            .join(TK, TK.c.user_id == U.c.id)
            .where(TK.c.token_hash == _digest(token), TK.c.revoked_at.is_(None))
            .where(U.c.disabled == false())
        )
        row = (await self._run("cannot read the token", query)).first()
        return _user(row) if row is not None else None

    async def revoke_tokens(self, name: str) -> int:
        user = await self.get_user(name)
        if user is None:
            raise KeyError(name)
        result = await self._run(
            "cannot revoke tokens",
            update(TK)
            .where(TK.c.user_id == user.id, TK.c.revoked_at.is_(None))
            .values(revoked_at=self.clock()),
        )
        return int(result.rowcount)


#: the lab's demo accounts: (name, role, agent id, phone)
DEMO_USERS = (
    ("giamsat", Role.SUPERVISOR, None, "PJSIP/sup201"),
    ("quanly", Role.MANAGER, None, None),
    ("quantri", Role.ADMIN, None, None),
    ("agent101", Role.AGENT, "agent101", "PJSIP/agent101"),
    ("agent102", Role.AGENT, "agent102", "PJSIP/agent102"),
    ("cq_gtvt", Role.AGENCY, None, None),
)
#: the demo agency accounts' agencies (``agencies/agencies_quangnam.toml``)
DEMO_AGENCIES = {"cq_gtvt": "so_gtvt"}


async def create_demo_users(engine: AsyncEngine) -> list[tuple[str, str, str]]:
    """Demo accounts with random passwords, for the lab to print: [(name, role, password)].

    An account that exists already gets a new random password (printed again)."""
    store = AuthStore(engine)
    made: list[tuple[str, str, str]] = []
    for name, role, agent, phone in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        if await store.get_user(name) is None:
            await store.add_user(
                name, role, password, agent_id=agent, phone=phone, agency_id=DEMO_AGENCIES.get(name)
            )
        else:
            await store.set_password(name, password)
        made.append((name, role.value, password))
    return made
