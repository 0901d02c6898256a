"""Accounts: who may use the web app and the API, with which role.

Roles and what they may do (checked on the server for every page and API call)::

    agent       console (own agent), read tickets, act on own tickets, postal registrations
    supervisor  wallboard, agents' states, listen/whisper/barge, announcement, all tickets,
                the caller of a confidential complaint (about officials; audited)
    manager     reports, read tickets
    admin       everything, accounts and the audit log
    agency      an agency's desk (``agencies/``): only the tickets forwarded to its own agency
                (``User.agency_id``): read, answer, ask for more time once, send back
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
    AGENCY = "agency"


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
    #: the agency desk: its own agency's forwarded tickets only (never ``TICKETS_READ``)
    AGENCY_DESK = "agency_desk"
    #: forward tickets to agencies, resolve them with the agency's answer
    FORWARD = "forward"
    #: see the caller, number and recording of a complaint about officials (audited)
    CONFIDENTIAL = "confidential"
    #: read the audit log
    AUDIT = "audit"
    #: postal delivery registrations: the console form, status updates, the daily export
    POSTAL = "postal"
    #: play the agents' call recordings (every play audited)
    CALL_RECORDINGS = "call_recordings"


PERMISSIONS: dict[Role, frozenset[Perm]] = {
    Role.AGENT: frozenset(
        {
            Perm.CONSOLE,
            Perm.TICKETS_READ,
            Perm.TICKETS_WRITE_OWN,
            Perm.METRICS,
            Perm.FORWARD,
            Perm.POSTAL,
        }
    ),
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
            Perm.FORWARD,
            Perm.CONFIDENTIAL,
            Perm.POSTAL,
            Perm.CALL_RECORDINGS,
        }
    ),
    Role.MANAGER: frozenset({Perm.REPORTS, Perm.TICKETS_READ, Perm.METRICS}),
    Role.ADMIN: frozenset(set(Perm) - {Perm.AGENCY_DESK}),
    Role.AGENCY: frozenset({Perm.AGENCY_DESK}),
}

ROLE_LABELS = {
    Role.AGENT: "Tổng đài viên",
    Role.SUPERVISOR: "Giám sát viên",
    Role.MANAGER: "Quản lý",
    Role.ADMIN: "Quản trị",
    Role.AGENCY: "Cơ quan, đơn vị",
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
    #: the agency (``agencies/`` file id) an ``agency`` account answers for
    agency_id: str | None = None

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


AGENCY_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_]{1,31}$")


def check_agency(role: Role, agency_id: str | None) -> None:
    """An ``agency`` account needs its agency's id; no other role has one."""
    if role is Role.AGENCY:
        if not agency_id or not AGENCY_ID_RE.match(agency_id):
            raise ValueError("an agency account needs its agency's id (e.g. so_tu_phap)")
    elif agency_id is not None:
        raise ValueError(f"only an agency account belongs to an agency (role {role.value})")


def check_new_user(name: str, role: str, phone: str | None, agency_id: str | None = None) -> Role:
    """Validate a new account's fields; ValueError says what is wrong."""
    if not NAME_RE.match(name):
        raise ValueError(f"user name {name!r}: use 2-64 of a-z 0-9 _ . - (lower case)")
    checked = check_role(role)
    check_phone(phone)
    check_agency(checked, agency_id)
    return checked


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password too short: at least {MIN_PASSWORD} characters")
