"""Agent actions from the wallboard, the console and the API, with who may do what.

A supervisor (``AGENTS_CONTROL``) may change any agent's state; an agent (``CONSOLE``) only its
own (the ``agent_id`` on its account). Listening in needs ``SPY`` and a phone on the account.
Click-to-call rings the agent's own phone first; with a ticket it also takes the ticket
(in progress, the agent's) so two agents do not call the same citizen back.
"""

from __future__ import annotations

from accounts.model import Perm, User
from tickets.model import Status
from web.control import AcdControl, ControlError, SpyMode, check_number, check_reason
from web.errors import ApiError
from web.ticket_actions import Change, TicketActions, may_write

OPS = ("login", "logout", "pause", "unpause")


def api_error(exc: ControlError) -> ApiError:
    return ApiError(exc.status, exc.error_id, exc.message)


def may_act_for(user: User, agent_id: str) -> bool:
    if user.can(Perm.AGENTS_CONTROL):
        return True
    return user.can(Perm.CONSOLE) and user.agent_id is not None and user.agent_id == agent_id


def _known(control: AcdControl, agent_id: str) -> None:
    state = control.state()
    if not state.available:
        raise ApiError(503, "acd_unavailable", "the engine's call distribution is not running")
    if state.agent(agent_id) is None:
        raise ApiError(404, "unknown_agent", f"no agent {agent_id!r}", {"agent": agent_id})


def change_state(
    control: AcdControl,
    user: User,
    agent_id: str,
    op: str,
    reason: str | None,
    hand_to: str | None = None,
) -> None:
    """``hand_to``: on pause or logout, the colleague who takes the agent's open
    conversations (as far as their capacity goes; the rest go back to their queues)."""
    if not may_act_for(user, agent_id):
        raise ApiError(403, "forbidden", "you may only change your own state")
    if op not in OPS:
        raise ApiError(422, "invalid_input", f"op: one of {', '.join(OPS)}", {"field": "op"})
    try:
        if op == "pause":
            check_reason(reason or "break")
        _known(control, agent_id)
        if op == "login":
            control.agent_login(agent_id)
        elif op == "logout":
            control.agent_logout(agent_id, hand_to or None)
        elif op == "pause":
            control.agent_pause(agent_id, reason or "break", hand_to or None)
        else:
            control.agent_unpause(agent_id)
    except ControlError as exc:
        raise api_error(exc) from None


async def spy(control: AcdControl, user: User, agent_id: str, mode: str) -> None:
    if not user.can(Perm.SPY):
        raise ApiError(403, "forbidden", "your role may not listen to calls")
    if mode not in {m.value for m in SpyMode}:
        raise ApiError(422, "invalid_input", "mode: listen, whisper or barge", {"field": "mode"})
    if not user.phone:
        raise ApiError(422, "no_phone", "your account has no phone to ring (users add --phone)")
    _known(control, agent_id)
    try:
        await control.spy(agent_id, user.phone, SpyMode(mode))
    except ControlError as exc:
        raise api_error(exc) from None


async def call_back(
    control: AcdControl,
    actions: TicketActions,
    user: User,
    agent_id: str,
    number: str | None,
    ticket: str | None,
) -> str:
    """Ring ``agent_id``'s phone, then ``number`` (or the ticket's caller). Returns the number."""
    if not may_act_for(user, agent_id):
        raise ApiError(403, "forbidden", "you may only call from your own phone")
    _known(control, agent_id)
    found = await actions.get(ticket) if ticket else None
    if found is not None and not may_write(user, found):
        raise ApiError(403, "forbidden", "this ticket is not yours to call back")
    if number is None:
        number = found.caller if found else None
    if not number:
        raise ApiError(422, "invalid_input", "number: give a number or a ticket with one")
    try:
        check_number(number)
        await control.call_out(agent_id, number, ticket)
    except ControlError as exc:
        raise api_error(exc) from None
    if found is not None and found.status is Status.NEW:
        if user.agent_id == agent_id:  # the agent takes the ticket
            await actions.apply(user, found.code, Change(status="in_progress", note="gọi lại"))
        else:  # a supervisor calls from an agent's phone: the ticket goes to that agent
            change = Change(action="assign", agent=agent_id, note="gọi lại")
            await actions.apply(user, found.code, change)
    return number
