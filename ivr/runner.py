"""Runs the voice menu for one call and keeps its ticket.

``run_call`` opens the ticket (durably, before anything is said), walks the menu nodes, and
always finishes the ticket: the outcome, the path, the end time. A call handed to a queue
(``ivr.handover``) leaves the outcome to whoever runs the queue: app_queue's follower
(``appqueue.tracker``) or our own ACD.

The walk is an explicit state machine: each node handler returns the next transition
(``Go``, ``Back``, ``ToQueue`` or ``End``); ``*`` (back) pops the stack of menus visited.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dossiers.model import CODE_RE, MAX_CODE_DIGITS, Dossier, DossierLookup, DossierStatus
from dossiers.procedures import KEYED_RE, ProcedureCatalogue, code_of_keys
from ivr import followup, postal_offer, procedure, say
from ivr.agi import DIGITS, AgiSession, caller_number
from ivr.fastagi import AgiScripts
from ivr.handover import AppQueueHandover, QueuedCaller, QueueHandover
from ivr.menu import LOOKUPS, Menu, Node
from ivr.prompts import agency_prompt, procedure_prompt
from ivr.schedule import Schedule
from postal.store import PostalStore
from tickets.model import IvrStep, Outcome
from tickets.store import TicketStore
from tongdai.clock import VN_TZ
from tongdai.errors import AgiHangup, StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IvrContext:
    menu: Menu
    tickets: TicketStore
    dossiers: DossierLookup
    schedule: Schedule
    #: Asterisk's path of the prompt folder (prompts are played as ``{sounds}/{name}``)
    sounds: str
    #: recorded messages: Asterisk's view and the host's view of the same folder
    messages_asterisk: str
    messages_host: Path
    #: the active special announcement's audio (Asterisk path without extension), if any
    announcement: Callable[[], Awaitable[str | None]] | None = None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    #: where a caller who chose a queue goes: app_queue (default) or our own ACD
    handover: QueueHandover = field(default_factory=AppQueueHandover)
    #: postal delivery requests (key 3 after a dossier's status); None: not offered
    postal: PostalStore | None = None
    #: does this queue record its agents' calls (``record = true`` in the ACD file)?
    records: Callable[[str], bool] = lambda queue: False
    #: Asterisk's view of the call recordings' folder (``[ivr] asterisk_calls_dir``)
    calls_asterisk: str = "/srv/tongdai/recordings/calls"
    #: say "cuộc gọi có thể được ghi âm" right after the greeting (``[ivr] recording_notice``)
    recording_notice: bool = False
    #: the procedure catalogue (menu 1 then 5); None: every code is "not found"
    procedures: ProcedureCatalogue | None = None
    #: the id of the agency handling a ticket (key 7 says its name); None: never said
    agency_of: Callable[[str], Awaitable[str | None]] | None = None
    #: the host's view of the sounds folder: a name (agency, procedure) is said only if built
    sounds_host: Path | None = None


#: the notice of ``IvrContext.recording_notice``
RECORDING_NOTICE = "ghi_am_thong_bao"


# --- transitions ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Go:
    node: str


@dataclass(frozen=True)
class Back:
    pass


@dataclass(frozen=True)
class ToQueue:
    node: Node | None  # None: the general queue after too many failures or an error


@dataclass(frozen=True)
class End:
    outcome: Outcome


Transition = Go | Back | ToQueue | End


@dataclass(frozen=True)
class ExtraKey:
    """One more choice in an after-menu: ``prompt`` is said before the menu's own; ``run``
    returns a transition, or None to stay in the after-menu."""

    key: str
    prompt: str
    run: Callable[[], Awaitable[Transition | None]]


@dataclass
class CallState:
    code: str
    steps: list[IvrStep] = field(default_factory=list)
    flushed: int = 0
    category: str | None = None
    dossier_code: str | None = None
    heard_status: bool = False
    closed: bool = False
    recording: str | None = None
    vars: dict[str, str] = field(default_factory=dict)


class CallFlow:
    def __init__(self, session: AgiSession, ctx: IvrContext, state: CallState) -> None:
        self.s = session
        self.ctx = ctx
        self.m = ctx.menu
        self.st = state
        #: a key pressed during the greeting or announcement: the first menu's choice
        self.pending: str | None = None

    # --- helpers ------------------------------------------------------------------------------
    def step(self, node: str, key: str | None = None, detail: str | None = None) -> None:
        self.st.steps.append(IvrStep(at=self.ctx.now(), node=node, key=key, detail=detail))

    def path(self, prompt: str) -> str:
        return f"{self.ctx.sounds}/{prompt}"

    async def play(self, prompts: list[str] | tuple[str, ...], *, barge: bool = True) -> str | None:
        """Play prompts in order; a key pressed while one plays stops them and is returned."""
        for p in prompts:
            key = await self.s.stream_file(self.path(p), DIGITS if barge else "")
            if key is not None:
                return key
        return None

    async def ask(self, prompts: tuple[str, ...], timeout_s: float) -> str | None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            return pending
        key = await self.play(prompts)
        if key is None:
            key = await self.s.wait_for_digit(int(timeout_s * 1000))
        return key

    async def flush(self) -> None:
        new = self.st.steps[self.st.flushed :]
        if new:
            await self.ctx.tickets.append_steps(self.st.code, new)
            self.st.flushed += len(new)

    async def say_ticket_code(self) -> None:
        await self.flush()  # the ticket is durable before the caller is told its code
        await self.play(["ma_phieu_cua_ban", *say.ticket_code(self.st.code), "ma_phieu_nhac_lai"])

    # --- the walk -----------------------------------------------------------------------------
    async def run(self) -> Transition:
        self.pending = await self.play(self.m.greeting)
        if self.ctx.recording_notice and self.pending is None:
            self.step("recording_notice")
            self.pending = await self.play([RECORDING_NOTICE])
        if self.ctx.announcement is not None and self.pending is None:
            audio = await self.ctx.announcement()
            if audio:
                self.step("announcement", detail=audio)
                self.pending = await self.s.stream_file(audio, DIGITS)
        if not self.ctx.schedule.is_open(self.ctx.now()):
            return await self.closed()
        stack: list[str] = []
        current = self.m.start
        while True:
            node = self.m.nodes[current]
            if node.category:
                self.st.category = node.category
            t = await self.visit(node)
            if isinstance(t, Go):
                if node.type == "menu" or node.type in LOOKUPS:
                    stack.append(current)
                current = t.node
            elif isinstance(t, Back):
                current = stack.pop() if stack else current
            else:
                return t

    async def visit(self, node: Node) -> Transition:
        if node.type == "menu":
            return await self.menu_node(node)
        if node.type == "queue":
            return ToQueue(node)
        if node.type == "dossier":
            return await self.dossier_node(node)
        if node.type == "followup":
            return await self.followup_node(node)
        if node.type == "procedure":
            return await self.procedure_node(node)
        if node.type == "record":
            return await self.record_node(node)
        if node.type == "play":
            self.step(node.id)
            await self.play(node.prompts)
            return Go(node.next or self.m.start)
        if node.type == "collect":
            digits, _ = await self.s.get_data(
                self.path(node.prompts[0]), int(node.timeout_s * 1000), node.max_digits
            )
            self.step(node.id, key=digits or None)
            self.st.vars[node.var or ""] = digits
            return Go(node.next or self.m.start)
        if node.type == "branch":
            value = self.st.vars.get(node.var or "", "")
            self.step(node.id, key=value or None)
            return Go(node.cases.get(value, node.default or self.m.start))
        self.step(node.id)
        await self.play(node.prompts)
        return End(Outcome.SELF_SERVICE if self.st.heard_status else Outcome.ABANDONED_IVR)

    async def failed(self, node: Node, failures: int, detail: str) -> Transition | None:
        self.step(node.id, detail=detail)
        if failures >= self.m.max_failures:
            self.step(node.id, detail="max_failures")
            return ToQueue(None)
        if detail == "invalid":
            await self.play([self.m.invalid_prompt], barge=False)
        return None

    async def menu_node(self, node: Node) -> Transition:
        failures = 0
        while True:
            key = await self.ask(node.prompts, node.timeout_s)
            if key is None:
                failures += 1
                if (t := await self.failed(node, failures, "timeout")) is not None:
                    return t
                continue
            if key == self.m.repeat_key:
                self.step(node.id, key, "repeat")
                continue
            if key == self.m.back_key:
                self.step(node.id, key, "back")
                return Back()
            if key in node.options:
                self.step(node.id, key)
                return Go(node.options[key])
            failures += 1
            if (t := await self.failed(node, failures, "invalid")) is not None:
                return t

    async def dossier_node(self, node: Node) -> Transition:
        failures = 0
        while True:
            await self.play(node.prompts[:-1])
            digits, _ = await self.s.get_data(
                self.path(node.prompts[-1]), int(node.timeout_s * 1000), MAX_CODE_DIGITS + 1
            )
            if not digits:
                failures += 1
                if (t := await self.failed(node, failures, "timeout")) is not None:
                    return t
                continue
            if digits.startswith(self.m.back_key):
                self.step(node.id, digits, "back")
                return Back()
            problem = None
            if len(digits) > MAX_CODE_DIGITS:
                problem = ("too_long", "ma_ho_so_qua_dai")
            elif not CODE_RE.match(digits):
                problem = ("malformed", "ma_ho_so_khong_hop_le")
            if problem is not None:
                failures += 1
                self.step(node.id, digits[:32], problem[0])
                if failures >= self.m.max_failures:
                    return ToQueue(None)
                await self.play([problem[1]], barge=False)
                continue
            self.st.dossier_code = digits
            t = await self.tell_dossier(node, digits)
            if t is not None:
                return t
            failures = 0

    async def tell_dossier(self, node: Node, code: str) -> Transition | None:
        """Say the dossier's status, then the after-menu; None means: ask for another code."""
        try:
            dossier = await self.ctx.dossiers.find(code)
        except StoreError as exc:
            log.error("dossier look-up failed: %s", exc)
            self.step(node.id, code, "lookup_error")
            await self.play([self.m.error_prompt], barge=False)
            return Go(node.agent or self.m.start)
        self.step(node.id, code, "found" if dossier else "not_found")
        extra = None
        if postal_offer.offered(self.ctx.postal, dossier):
            run = functools.partial(self.postal_request, node, code)
            extra = ExtraKey(postal_offer.KEY, postal_offer.OFFER_PROMPT, run)
        return await self.after_menu(node, lambda: self.say_dossier(code, dossier), extra)

    async def postal_request(self, node: Node, code: str) -> Transition | None:
        """Key 3: the caller's postal delivery request goes on the ticket
        (``ivr.postal_offer``); an agent takes the address."""
        assert self.ctx.postal is not None
        await self.flush()  # the ticket's path is durable before the request points at it
        done = await postal_offer.request(
            self.ctx.postal, ticket_code=self.st.code, dossier_code=code,
            caller=self.s.env.get("agi_callerid"), at=self.ctx.now(),
        )  # fmt: skip
        self.step(node.id, postal_offer.KEY, f"postal:{done.result}:{done.registration_id or ''}")
        if done.result is postal_offer.Result.FAILED:
            await self.play([self.m.error_prompt], barge=False)
        await self.play(postal_offer.PROMPTS[done.result], barge=False)
        if done.to_agent:
            return Go(node.agent or self.m.start)
        if done.result is postal_offer.Result.REQUESTED:
            await self.say_ticket_code()
        return None

    async def say_dossier(self, code: str, dossier: Dossier | None) -> str | None:
        if dossier is None:
            return await self.play(["ho_so_khong_tim_thay"])
        today = self.ctx.now().date()
        words = ["ho_so_ma", *say.digits(code), f"trang_thai_{dossier.status.value}"]
        words += ["ngay_tiep_nhan", *say.date_vi(dossier.received_date)]
        active = (DossierStatus.RECEIVED, DossierStatus.IN_PROGRESS)
        if dossier.due_date is not None and dossier.status in active:
            words += ["ngay_hen_tra", *say.date_vi(dossier.due_date)]
        if dossier.is_overdue(today):
            words.append("ho_so_qua_han")
        self.st.heard_status = True
        return await self.play(words)

    async def followup_node(self, node: Node) -> Transition:
        """Key 7: the caller keys a ticket code's 14 digits and ``#`` and hears its status
        (``ivr.followup`` decides how much); both tickets' paths record the look-up."""
        return await self.keyed_node(
            node,
            followup.MAX_KEYED + 1,
            followup.code_of_keys,
            "ma_phieu_khong_hop_le",
            lambda code: self.tell_ticket(node, code),
        )

    async def procedure_node(self, node: Node) -> Transition:
        """Menu 1 then 5: the caller keys a procedure code's seven digits and ``#`` and hears
        its name, time limit and fee (``ivr.procedure``)."""
        return await self.keyed_node(
            node,
            procedure.MAX_KEYED,
            lambda keyed: keyed if KEYED_RE.match(keyed) else None,
            "ma_thu_tuc_khong_hop_le",
            lambda keyed: self.tell_procedure(node, keyed),
        )

    async def keyed_node(
        self,
        node: Node,
        max_keys: int,
        parse: Callable[[str], str | None],
        malformed_prompt: str,
        tell: Callable[[str], Awaitable[Transition | None]],
    ) -> Transition:
        """Ask for a code ended by ``#`` until ``tell`` (given what ``parse`` made of the keys)
        returns a transition; keys ``parse`` refuses are told with ``malformed_prompt``."""
        failures = 0
        while True:
            await self.play(node.prompts[:-1])
            keyed, _ = await self.s.get_data(
                self.path(node.prompts[-1]), int(node.timeout_s * 1000), max_keys
            )
            if not keyed:
                failures += 1
                if (t := await self.failed(node, failures, "timeout")) is not None:
                    return t
                continue
            if keyed.startswith(self.m.back_key):
                self.step(node.id, keyed, "back")
                return Back()
            code = parse(keyed)
            if code is None:
                failures += 1
                self.step(node.id, keyed[:32], "malformed")
                if failures >= self.m.max_failures:
                    return ToQueue(None)
                await self.play([malformed_prompt], barge=False)
                continue
            t = await tell(code)
            if t is not None:
                return t
            failures = 0

    async def lookup_failed(self, node: Node, code: str, exc: StoreError) -> Transition:
        """The store behind a look-up is down: say so and hand the caller to the agents."""
        log.error("look-up of %s failed: %s", code, exc)
        self.step(node.id, code, "lookup_error")
        await self.play([self.m.error_prompt], barge=False)
        return Go(node.agent or self.m.start)

    def built(self, prompt: str) -> bool:
        """Is there audio for ``prompt`` (a name built from data, which may lag the data)?"""
        host = self.ctx.sounds_host
        return host is None or (host / f"{prompt}.wav").is_file()

    async def tell_procedure(self, node: Node, keyed: str) -> Transition | None:
        """Say the procedure's name, time limit and fee, then the after-menu."""
        code = code_of_keys(keyed) or keyed
        try:
            found = await self.ctx.procedures.find(code) if self.ctx.procedures else None
        except StoreError as exc:
            return await self.lookup_failed(node, code, exc)
        self.step(node.id, code, "found" if found else "not_found")
        name = procedure_prompt(keyed)
        spoken = procedure.words(keyed, found, name if self.built(name) else None)
        return await self.after_menu(node, lambda: self.say_followup(spoken, found is not None))

    async def agency_prompt(self, code: str) -> str | None:
        """The prompt naming the agency handling ticket ``code``, if forwarded and built."""
        if self.ctx.agency_of is None:
            return None
        try:
            agency = await self.ctx.agency_of(code)
        except StoreError as exc:
            log.error("agency of %s unknown: %s", code, exc)
            return None
        prompt = agency_prompt(agency) if agency else None
        return prompt if prompt is not None and self.built(prompt) else None

    async def tell_ticket(self, node: Node, code: str) -> Transition | None:
        """Say ticket ``code``'s status, then the after-menu; None means: ask for another."""
        try:
            ticket = await self.ctx.tickets.get(code)
        except StoreError as exc:
            return await self.lookup_failed(node, code, exc)
        shown = followup.disclosure(ticket, self.s.env.get("agi_callerid"))
        self.step(node.id, code, shown.value)
        if ticket is not None and ticket.code != self.st.code:
            mark = IvrStep(self.ctx.now(), node.id, None, f"looked_up:{self.st.code}:{shown}")
            try:
                await self.ctx.tickets.append_steps(ticket.code, [mark])
            except StoreError as exc:
                log.error("could not mark the look-up on %s: %s", ticket.code, exc)
        agency = await self.agency_prompt(code) if shown is followup.Disclosure.FOUND else None
        today = self.ctx.now().astimezone(VN_TZ).date()
        spoken = followup.words(code, ticket, shown, today, agency)
        return await self.after_menu(node, lambda: self.say_followup(spoken, ticket is not None))

    async def after_menu(
        self,
        node: Node,
        say: Callable[[], Awaitable[str | None]],
        extra: ExtraKey | None = None,
    ) -> Transition | None:
        """After a status was said: 1 says it again, 2 asks for another code (None), 0 an agent,
        the back key one level up, ``extra`` its key; ``say`` speaks the status and returns a
        key pressed over it."""
        failures = 0
        key = await say()
        prompts = (*((extra.prompt,) if extra else ()), node.after_prompt or "")
        while True:
            if key is None:
                key = await self.ask(prompts, node.timeout_s)
            if key is None:
                failures += 1
                if (t := await self.failed(node, failures, "timeout")) is not None:
                    return t
                continue
            self.step(node.id, key, "after")
            if key == "1":
                key = await say()
                continue
            if key == "2":
                return None
            if key == "0":
                return Go(node.agent or self.m.start)
            if key == self.m.back_key:
                return Back()
            if extra is not None and key == extra.key:
                if (t := await extra.run()) is not None:
                    return t
                prompts, key = (node.after_prompt or "",), None  # offered once is enough
                continue
            if key != self.m.repeat_key:
                failures += 1
                if (t := await self.failed(node, failures, "invalid")) is not None:
                    return t
            key = None

    async def say_followup(self, spoken: list[str], found: bool) -> str | None:
        if found:
            self.st.heard_status = True
        return await self.play(spoken)

    async def record_node(self, node: Node) -> Transition:
        self.step(node.id)
        await self.play(node.prompts)
        name = self.st.code
        try:
            await self.s.record_file(
                f"{self.ctx.messages_asterisk}/{name}", "wav", "#",
                node.max_seconds * 1000, node.silence_s,
            )  # fmt: skip
        except AgiHangup:
            self.keep_recording(name)  # hanging up is how many callers end a message
            raise
        if not self.keep_recording(name):
            self.step(node.id, detail="no_audio")
            return End(Outcome.ABANDONED_IVR)
        await self.play([node.thanks] if node.thanks else [])
        if node.say_code:
            await self.say_ticket_code()
        await self.play(self.m.goodbye)
        return End(Outcome.MESSAGE_LEFT)

    def keep_recording(self, name: str) -> bool:
        f = self.ctx.messages_host / f"{name}.wav"
        if f.exists() and f.stat().st_size > 44:  # more than a bare WAV header
            self.st.recording = str(f)
            return True
        return False

    async def closed(self) -> Transition:
        self.st.closed = True
        self.step("closed")
        key = await self.ask((self.m.closed_prompt,), 6)
        if key == self.m.closed_message_key:
            self.step("closed", key)
            return await self.record_node(self.m.nodes[self.m.message_node])
        await self.play(self.m.goodbye)
        return End(Outcome.CLOSED_HOURS)


async def run_call(session: AgiSession, ctx: IvrContext) -> None:
    """The whole life of one call in the IVR, ending with a complete ticket."""
    env = session.env
    caller = caller_number(env)
    uniqueid = env.get("agi_uniqueid") or None
    try:
        ticket = await ctx.tickets.open(
            channel="voice", caller=caller, uniqueid=uniqueid, started_at=ctx.now()
        )
    except StoreError as exc:
        # no ticket store: the call is not refused, it goes straight to a person
        log.error("ticket store unavailable, sending the call to the general queue: %s", exc)
        await session.stream_file(f"{ctx.sounds}/{ctx.menu.error_prompt}", "")
        await _set_queue_vars(session, ctx, ctx.menu.general_queue, 1800)
        return
    state = CallState(code=ticket.code)
    flow = CallFlow(session, ctx, state)
    outcome: Outcome | None = None
    changes: dict[str, object] = {}
    try:
        await session.set_variable("TONGDAI_TICKET", ticket.code)
        t = await flow.run()
        if isinstance(t, ToQueue):
            node = t.node
            queue = node.queue if node and node.queue else ctx.menu.general_queue
            flow.step(node.id if node else "general_queue", detail=f"queue:{queue}")
            if node and node.topic:
                changes["notes"] = f"topic: {node.topic}"
            changes.update(queue=queue, queued_at=ctx.now())
            state.category = state.category or (node.category if node else None) or "chung"
            queued = QueuedCaller(uniqueid or "", env.get("agi_channel", ""), caller, ticket.code)
            if not ctx.handover.admit(queued, queue):
                # the system holds its maximum of calls: tell the caller, never drop silently
                changes.pop("queued_at")
                outcome = Outcome.REJECTED_BUSY
                flow.step("busy", detail=f"queue:{queue}")
                await flow.play(["qua_tai"], barge=False)
                await session.hangup()
                return
            await flow.play(node.prompts if node else ["chuyen_tong_dai_vien"])
            if node is not None and node.say_code:
                await flow.say_ticket_code()
            await _set_queue_vars(session, ctx, queue, node.max_wait_s if node else 1800)
            if ctx.records(queue):
                # the dialplan's [tongdai-record] records the agent's leg into <code>.wav
                await session.set_variable("TONGDAI_RECORD", f"{ctx.calls_asterisk}/{ticket.code}")
            dial = ctx.handover.hand_over(queued) if uniqueid else None
            if dial is not None:  # [tongdai-acd-dial]: no AMI round trip to the ring
                await session.set_variable("TONGDAI_DIAL", dial)
        else:
            assert isinstance(t, End)
            outcome = t.outcome
            await session.hangup()
    except AgiHangup:
        outcome = _abandon_outcome(state)
        flow.step("hangup")
    except Exception:
        log.exception("IVR failed; sending the caller to the general queue")
        outcome = Outcome.ERROR
        flow.step("error")
        try:
            await session.stream_file(flow.path(ctx.menu.error_prompt), "")
            await _set_queue_vars(session, ctx, ctx.menu.general_queue, 1800)
            changes.update(queue=ctx.menu.general_queue, queued_at=ctx.now())
            outcome = None  # the queue tracker completes it
        except Exception:
            log.exception("could not route the failed call to the general queue")
    finally:
        if uniqueid:
            ctx.handover.release(uniqueid)
        await _finish(ctx, flow, state, outcome, changes)


def _abandon_outcome(state: CallState) -> Outcome:
    if state.recording:
        return Outcome.MESSAGE_LEFT
    if state.heard_status:
        return Outcome.SELF_SERVICE
    if state.closed:
        return Outcome.CLOSED_HOURS
    return Outcome.ABANDONED_IVR


async def _finish(
    ctx: IvrContext,
    flow: CallFlow,
    state: CallState,
    outcome: Outcome | None,
    changes: dict[str, object],
) -> None:
    changes.update(
        category=state.category or "chung",
        dossier_code=state.dossier_code,
        recording=state.recording,
    )
    if outcome is not None:
        changes.update(outcome=outcome, ended_at=ctx.now())
    try:
        await flow.flush()
        await ctx.tickets.update(state.code, **changes)
    except StoreError as exc:
        log.error("could not finish ticket %s: %s", state.code, exc)


async def _set_queue_vars(session: AgiSession, ctx: IvrContext, queue: str, max_wait: int) -> None:
    """The dialplan reads these after the AGI returns: ``Queue()`` (app_queue), or the wait
    loop of the engine's own ACD."""
    await session.set_variable("TONGDAI_QUEUE", queue)
    await session.set_variable("TONGDAI_MAXWAIT", str(max_wait))
    for name, value in ctx.handover.variables(queue).items():
        await session.set_variable(name, value)


def register_scripts(scripts: AgiScripts, ctx: IvrContext) -> None:
    """The voice menu: ``agi://.../ivr``."""

    async def ivr(channel: AgiSession) -> None:
        await run_call(channel, ctx)

    scripts.add("ivr", ivr)
