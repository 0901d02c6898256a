"""Account administration (role admin, ``Perm.USERS``), shared by the accounts page and the API.

    add        name, display name, role, password (at least ``MIN_PASSWORD`` characters, argon2
               like ``tongdai users add``), optional agent id and phone
    change     role, disabled / enabled, display name, agent id, phone
    password   reset: the new password, and the account's sessions end

Every input is checked here (``web.errors`` rules: text without control characters, within a
length) and a refusal is an ``ApiError``. An administrator cannot disable or demote their own
account; as only an enabled administrator may act, there is always one left to administer.
What changes who someone is (disabled, another role, a new password) also ends their live
streams (``LiveHub.end_user``), so an open wallboard does not outlive the right to see it.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Any

from accounts.model import MIN_PASSWORD, AccountInfo, Role, User
from accounts.store import AuthStore
from web import errors as v
from web.errors import ApiError
from web.live import LiveHub

ROLES = tuple(r.value for r in Role)
AGENT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_PASSWORD = 200
#: fields ``change`` accepts (the API's PATCH body)
CHANGES = frozenset({"role", "disabled", "display_name", "agent_id", "phone", "agency_id"})


@dataclass(frozen=True)
class NewUser:
    name: str
    role: str
    password: str
    display_name: str | None = None
    agent_id: str | None = None
    phone: str | None = None
    agency_id: str | None = None


def account_json(a: AccountInfo) -> dict[str, Any]:
    u = a.user
    return {
        "name": u.name,
        "display_name": u.display_name,
        "role": u.role.value,
        "agent_id": u.agent_id,
        "phone": u.phone,
        "agency_id": u.agency_id,
        "disabled": a.disabled,
        "has_password": a.has_password,
        "created_at": a.created_at.isoformat(),
    }


def check_password(value: Any) -> str:
    password = v.text(value, "password", max_len=MAX_PASSWORD)
    if len(password) < MIN_PASSWORD:
        raise ApiError(
            422,
            "weak_password",
            f"password: at least {MIN_PASSWORD} characters",
            {"field": "password", "min_length": MIN_PASSWORD},
        )
    return password


def _agent_id(value: Any) -> str | None:
    found = v.opt_text(value, "agent_id", max_len=64)
    if found is not None and not AGENT_RE.match(found):
        raise v.invalid("agent_id", "letters, digits, _ . - only")
    return found


def _phone(value: Any) -> str | None:
    return v.opt_text(value, "phone", max_len=80)


def new_user(data: Mapping[str, Any]) -> NewUser:
    """The checked fields of a new account (a form or a JSON body)."""
    return NewUser(
        name=v.text(data.get("name"), "name", max_len=64).strip().lower(),
        role=v.choice(data.get("role"), "role", ROLES),
        password=check_password(data.get("password")),
        display_name=v.opt_text(data.get("display_name"), "display_name", max_len=120),
        agent_id=_agent_id(data.get("agent_id")),
        phone=_phone(data.get("phone")),
        agency_id=v.opt_text(data.get("agency_id"), "agency_id", max_len=32),
    )


async def add(auth: AuthStore, new: NewUser, agencies: Container[str] = ()) -> AccountInfo:
    """Create the account; an agency account's agency must be in ``agencies`` (the file)."""
    if new.agency_id is not None and new.agency_id not in agencies:
        raise v.invalid("agency_id", "not an agency of the agencies file")
    if await auth.account(new.name) is not None:
        raise ApiError(409, "user_exists", f"user {new.name!r} exists already", {"name": new.name})
    try:
        await auth.add_user(
            new.name,
            new.role,
            new.password,
            agent_id=new.agent_id,
            phone=new.phone,
            display_name=new.display_name,
            agency_id=new.agency_id,
        )
    except ValueError as exc:
        raise ApiError(422, "invalid_input", str(exc)) from None
    found = await auth.account(new.name)
    assert found is not None
    return found


async def _get(auth: AuthStore, name: str) -> AccountInfo:
    found = await auth.account(name)
    if found is None:
        raise ApiError(404, "not_found", f"no user {name!r}", {"name": name})
    return found


def checked_changes(data: Mapping[str, Any]) -> dict[str, Any]:
    """A PATCH body (or a form's one change) as ``AuthStore.update_user`` arguments."""
    v.no_unknown(data, set(CHANGES))
    changes: dict[str, Any] = {}
    if "role" in data:
        changes["role"] = v.choice(data["role"], "role", ROLES)
    if "disabled" in data:
        if not isinstance(data["disabled"], bool):
            raise v.invalid("disabled", "must be true or false")
        changes["disabled"] = data["disabled"]
    if "display_name" in data:
        changes["display_name"] = v.opt_text(data["display_name"], "display_name", max_len=120)
    if "agent_id" in data:
        changes["agent_id"] = _agent_id(data["agent_id"])
    if "phone" in data:
        changes["phone"] = _phone(data["phone"])
    if "agency_id" in data:
        changes["agency_id"] = v.opt_text(data["agency_id"], "agency_id", max_len=32)
    return changes


async def change(
    auth: AuthStore, hub: LiveHub, actor: User, name: str, changes: Mapping[str, Any]
) -> AccountInfo:
    """Apply checked ``changes`` to ``name``'s account (see the module docstring)."""
    before = await _get(auth, name)
    demoted = "role" in changes and changes["role"] != Role.ADMIN.value
    disabled = changes.get("disabled") is True
    # the actor is an enabled administrator: refusing this keeps at least one, always
    if before.user.id == actor.id and (demoted or disabled):
        raise ApiError(
            409, "self_lockout", "you cannot disable your own account or take away its role"
        )
    try:
        after = await auth.update_user(name, **changes)
    except ValueError as exc:
        raise ApiError(422, "invalid_input", str(exc)) from None
    except KeyError:
        raise ApiError(404, "not_found", f"no user {name!r}", {"name": name}) from None
    if (
        (after.disabled and not before.disabled)
        or after.user.role is not before.user.role
        or after.user.agency_id != before.user.agency_id
    ):
        hub.end_user(after.user.id)
    return after


async def reset_password(auth: AuthStore, hub: LiveHub, name: str, password: str) -> int:
    """Set a new password; the account's sessions and live streams end. Returns how many
    sessions ended."""
    found = await _get(auth, name)
    try:
        await auth.set_password(name, password)
    except ValueError as exc:
        raise ApiError(422, "weak_password", str(exc), {"field": "password"}) from None
    except KeyError:
        raise ApiError(404, "not_found", f"no user {name!r}", {"name": name}) from None
    ended = await auth.end_user_sessions(name)
    hub.end_user(found.user.id)
    return ended
