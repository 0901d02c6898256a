"""The callers' journeys of ``tongdai bench ivr``: the published mix, SIPp steps and the ticket
each journey must leave (pure; unit-tested in tests/unit/test_ivr_bench.py).

Times are after the call is answered. The greeting (``chao_mung``) lasts 7.9 s, the main menu
(``menu_chinh``) 32.8 s, so a key at 12 s chooses while the main menu plays (barge-in), a key
at 3 s while the greeting plays; sub-menus are interrupted 3 s into them. Single keys are RFC
4733 (replayed pcaps, as carriers send them); dossier codes are SIP INFO, one per digit (the
lab's way to send repeated digits), each call keying its own code.

======================  =====  ===================================================
journey                 share  what the caller does (and how the call ends)
======================  =====  ===================================================
dossier_found           25%    2, a known 10-digit code + #, hangs up while the
                               status is read (self-service)
dossier_unknown         10%    2, an unknown 10-digit code + #, 0: an agent
procedures              15%    1, then 2 in the procedures menu: an agent
procedures_wrong_key     5%    1, 7 (invalid), then 4: an agent
wrong_key_main           5%    # during the greeting (invalid), then 5: an agent
back_key                 5%    1, * (back to the main menu), then 6: an agent
repeat_investment        5%    9 (repeat), then 4: an agent
complaint_message       10%    3, 2, talks 7 s after the beep, #: the IVR hangs up
complaint_agent          5%    3, then 1 (hears the ticket code): an agent
operator                10%    0 during the greeting: an agent
abandon                  5%    1, hangs up 5 s into the procedures menu
======================  =====  ===================================================

An agent (a SIPp phone) answers after 300 ms and hangs up after ``--talk-s``; the caller then
hears the satisfaction survey and Asterisk hangs up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from lab.sipp_run import ExpectHangup, HangUp, Key, Keys, Speak, Step, Wait, build_caller_scenario
from tickets.model import Outcome

#: stands for the call's own dossier code in steps and expected paths
CODE = "0000000000"
MENU_KEY_MS = 12_000  # the main menu is playing
GREETING_KEY_MS = 3_000  # the greeting is playing
SUBMENU_KEY_MS = 3_000  # a sub-menu is playing
#: how long the IVR may take to hang up after a message (thanks, ticket code, goodbye)
IVR_HANGUP_MS = 60_000

PathStep = tuple[str, str | None, str | None]  # (node, key, detail) of a ticket's IVR path
Ending = Literal["caller", "ivr", "agent"]


@dataclass(frozen=True)
class Expect:
    """The ticket a journey must leave in our IVR."""

    outcome: Outcome
    category: str
    queue: str | None
    path: tuple[PathStep, ...]
    recording: bool = False


@dataclass(frozen=True)
class Journey:
    name: str
    share: int  # percent of the calls
    steps: tuple[Step, ...]
    ending: Ending  # who ends the call: the caller (HangUp), the IVR, or an agent then the IVR
    expect: Expect
    dossier: Literal["known", "unknown"] | None = None


def _q(node: str, queue: str) -> PathStep:
    return (node, None, f"queue:{queue}")


_ANSWERED = Outcome.ANSWERED
JOURNEYS: tuple[Journey, ...] = (
    Journey(
        "dossier_found", 25,
        (Wait(MENU_KEY_MS), Key("2"), Wait(6_000), Keys(CODE + "#"), Wait(20_000)),
        "caller",
        Expect(Outcome.SELF_SERVICE, "tra_cuu_ho_so", None,
               (("main", "2", None), ("tra_cuu", CODE, "found"), ("hangup", None, None))),
        dossier="known",
    ),
    Journey(
        "dossier_unknown", 10,
        (Wait(MENU_KEY_MS), Key("2"), Wait(6_000), Keys(CODE + "#"), Wait(9_000), Key("0")),
        "agent",
        Expect(_ANSWERED, "tra_cuu_ho_so", "tra_cuu_ho_so",
               (("main", "2", None), ("tra_cuu", CODE, "not_found"), ("tra_cuu", "0", "after"),
                _q("q_tra_cuu", "tra_cuu_ho_so"))),
        dossier="unknown",
    ),
    Journey(
        "procedures", 15,
        (Wait(MENU_KEY_MS), Key("1"), Wait(SUBMENU_KEY_MS), Key("2")),
        "agent",
        Expect(_ANSWERED, "thu_tuc", "thu_tuc",
               (("main", "1", None), ("thu_tuc", "2", None),
                _q("q_thu_tuc_thanh_phan", "thu_tuc"))),
    ),
    Journey(
        "procedures_wrong_key", 5,
        (Wait(MENU_KEY_MS), Key("1"), Wait(SUBMENU_KEY_MS), Key("7"), Wait(5_000), Key("4")),
        "agent",
        Expect(_ANSWERED, "thu_tuc", "thu_tuc",
               (("main", "1", None), ("thu_tuc", None, "invalid"), ("thu_tuc", "4", None),
                _q("q_thu_tuc_cong_dvc", "thu_tuc"))),
    ),
    Journey(
        "wrong_key_main", 5,
        (Wait(GREETING_KEY_MS), Key("#"), Wait(5_000), Key("5")),
        "agent",
        Expect(_ANSWERED, "du_lich", "du_lich",
               (("main", None, "invalid"), ("main", "5", None), _q("q_du_lich", "du_lich"))),
    ),
    Journey(
        "back_key", 5,
        (Wait(MENU_KEY_MS), Key("1"), Wait(SUBMENU_KEY_MS), Key("*"), Wait(3_000), Key("6")),
        "agent",
        Expect(_ANSWERED, "buu_chinh", "buu_chinh",
               (("main", "1", None), ("thu_tuc", "*", "back"), ("main", "6", None),
                _q("q_buu_chinh", "buu_chinh"))),
    ),
    Journey(
        "repeat_investment", 5,
        (Wait(MENU_KEY_MS), Key("9"), Wait(4_000), Key("4")),
        "agent",
        Expect(_ANSWERED, "dau_tu", "dau_tu",
               (("main", "9", "repeat"), ("main", "4", None), _q("q_dau_tu", "dau_tu"))),
    ),
    Journey(
        "complaint_message", 10,
        (Wait(MENU_KEY_MS), Key("3"), Wait(SUBMENU_KEY_MS), Key("2"), Wait(7_500), Speak(),
         Key("#")),
        "ivr",
        Expect(Outcome.MESSAGE_LEFT, "phan_anh", None,
               (("main", "3", None), ("phan_anh", "2", None), ("ghi_am", None, None)),
               recording=True),
    ),
    Journey(
        "complaint_agent", 5,
        (Wait(MENU_KEY_MS), Key("3"), Wait(SUBMENU_KEY_MS), Key("1")),
        "agent",
        Expect(_ANSWERED, "phan_anh", "phan_anh",
               (("main", "3", None), ("phan_anh", "1", None), _q("q_phan_anh", "phan_anh"))),
    ),
    Journey(
        "operator", 10,
        (Wait(GREETING_KEY_MS), Key("0")),
        "agent",
        Expect(_ANSWERED, "chung", "chung", (("main", "0", None), _q("q_chung", "chung"))),
    ),
    Journey(
        "abandon", 5,
        (Wait(MENU_KEY_MS), Key("1"), Wait(5_000)),
        "caller",
        Expect(Outcome.ABANDONED_IVR, "thu_tuc", None,
               (("main", "1", None), ("hangup", None, None))),
    ),
)  # fmt: skip
BY_NAME: Mapping[str, Journey] = {j.name: j for j in JOURNEYS}
assert sum(j.share for j in JOURNEYS) == 100


def allocate(n: int, journeys: Sequence[Journey] = JOURNEYS) -> dict[str, int]:
    """Calls per journey for ``n`` callers: the shares by largest remainder; when ``n`` is at
    least the number of journeys, every journey gets one call or more (taken from the
    largest), so a small smoke run still walks them all."""
    total = sum(j.share for j in journeys)
    quotas = {j.name: n * j.share / total for j in journeys}
    out = {k: int(q) for k, q in quotas.items()}
    by_remainder = sorted(quotas, key=lambda k: (-(quotas[k] - out[k]), k))
    for k in by_remainder[: n - sum(out.values())]:
        out[k] += 1
    if n >= len(journeys):
        for k in [k for k, v in out.items() if v == 0]:
            donor = max(out, key=lambda x: out[x])
            out[donor] -= 1
            out[k] = 1
    return out


def steps_of(journey: Journey, agent_wait_ms: int) -> list[Step]:
    """The journey's SIPp steps with its ending: the caller's BYE, or Asterisk's within
    ``IVR_HANGUP_MS`` (after a message) or ``agent_wait_ms`` (queue, agent, survey)."""
    end: Step = HangUp()
    if journey.ending != "caller":
        end = ExpectHangup(IVR_HANGUP_MS if journey.ending == "ivr" else agent_wait_ms)
    return [*journey.steps, end]


_CODE_RECV = '<recv response="200" rtd="true"/>'
_DIGITS = [f"d{i}" for i in range(len(CODE))]


def scenario_xml(journey: Journey, agent_wait_ms: int) -> str:
    """SIPp XML for the journey. With a dossier, each call keys its own code: the caller's
    display name (the injection file's second field) is the code; the 200 OK to the INVITE
    echoes the From header, where a regular expression splits it into one variable per
    digit, and each INFO sends ``Signal=[$dN]``."""
    xml = build_caller_scenario(steps_of(journey, agent_wait_ms), name=f"bench ivr {journey.name}")
    if journey.dossier is None:
        return xml
    if xml.count(_CODE_RECV) != 1 or xml.count(f"Signal={CODE[0]}\n") < len(CODE):
        raise ValueError("bench ivr: the SIPp scenario no longer has the shape expected")
    half = len(CODE) // 2  # SIPp takes at most nine sub-expressions per regular expression
    regexps = [
        ("code_a", "([0-9])" * half, _DIGITS[:half]),
        ("code_b", "[0-9]" * half + "([0-9])" * (len(CODE) - half) + "&quot;", _DIGITS[half:]),
    ]
    eregs = "".join(
        f'      <ereg regexp="From: *&quot;{rx}" search_in="msg" check_it="true" '
        f'assign_to="{whole},{",".join(digits)}"/>\n'
        for whole, rx, digits in regexps
    )
    ereg = (
        '<recv response="200" rtd="true">\n    <action>\n'
        + eregs
        + '      <log message="dossier code [$code_a] [$code_b]"/>\n    </action>\n  </recv>'
    )
    xml = xml.replace(_CODE_RECV, ereg)
    for var in _DIGITS:  # the placeholder's digits, in order, are the first INFO bodies
        xml = re.sub(f"Signal={CODE[0]}\n", f"Signal=[${var}]\n", xml, count=1)
    return xml


def expected_path(journey: Journey, code: str | None) -> list[PathStep]:
    return [(n, code if k == CODE else k, d) for n, k, d in journey.expect.path]
