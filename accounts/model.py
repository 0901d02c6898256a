"""Accounts: who may use the web app and the API, with which role.

Roles and what they may do (checked on the server for every page and API call)::

    agent       console (own agent), read tickets, act on own tickets
    supervisor  wallboard, agents' states, listen/whisper/barge, announcement, all tickets
    manager     reports, read tickets
    admin       everything, and accounts
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    MANAGER = "manager"
    ADMIN = "admin"


class Perm(StrEnum):
    CONSOLE = "console"
    WALLBOARD = "wallboard"
    AGENTS_CONTROL = "agents_control"
    SPY = "spy"
    ANNOUNCE = "announce"
    TICKETS_READ = "tickets_read"
    TICKETS_WRITE_OWN = "tickets_write_own"
    TICKETS_WRITE_ALL = "tickets_write_all"
    REPORTS = "reports"
    METRICS = "metrics"
    USERS = "users"


PERMISSIONS: dict[Role, frozenset[Perm]] = {
    Role.AGENT: frozenset({Perm.CONSOLE, Perm.TICKETS_READ, Perm.TICKETS_WRITE_OWN, Perm.METRICS}),
    Role.SUPERVISOR: frozenset(
        {
            Perm.WALLBOARD,
            Perm.AGENTS_CONTROL,
            Perm.SPY,
            Perm.ANNOUNCE,
            Perm.TICKETS_READ,
            Perm.TICKETS_WRITE_OWN,
            Perm.TICKETS_WRITE_ALL,
            Perm.CONSOLE,
            Perm.METRICS,
        }
    ),
    Role.MANAGER: frozenset({Perm.REPORTS, Perm.TICKETS_READ, Perm.METRICS}),
    Role.ADMIN: frozenset(Perm),
}

ROLE_LABELS = {
    Role.AGENT: "Tổng đài viên",
    Role.SUPERVISOR: "Giám sát viên",
    Role.MANAGER: "Quản lý",
    Role.ADMIN: "Quản trị",
}

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
PHONE_RE = re.compile(r"^PJSIP/[A-Za-z0-9_.-]{1,60}$")
MIN_PASSWORD = 10
TOKEN_PREFIX = "tdk_"


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    agent_id: str | None = None
    #: the user's own phone for listen/whisper/barge (``PJSIP/sup201``: one of the ACD file's
    #: ``[supervisors.*]`` phones)
    phone: str | None = None
    display_name: str | None = None

    def can(self, perm: Perm) -> bool:
        return perm in PERMISSIONS[self.role]

    @property
    def label(self) -> str:
        return self.display_name or self.name


@dataclass(frozen=True)
class AccountInfo:
    """An account as the administrator sees it: disabled ones too, never the password hash."""

    user: User
    disabled: bool
    has_password: bool
    created_at: datetime


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ValueError(f"role {role!r}: one of {', '.join(r.value for r in Role)}") from None


def check_phone(phone: str | None) -> None:
    if phone is not None and not PHONE_RE.match(phone):
        raise ValueError(f"phone {phone!r}: expected an endpoint like PJSIP/sup201")


def check_new_user(name: str, role: str, phone: str | None) -> Role:
    """Validate a new account's fields; ValueError says what is wrong."""
    if not NAME_RE.match(name):
        raise ValueError(f"user name {name!r}: use 2-64 of a-z 0-9 _ . - (lower case)")
    checked = check_role(role)
    check_phone(phone)
    return checked


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password too short: at least {MIN_PASSWORD} characters")
