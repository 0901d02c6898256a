"""The ACD file: the shipped one is valid, broken ones name file and field, PJSIP is generated."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from acd.config import load_acd, render_pjsip_agents
from tongdai.errors import ConfigError
from tongdai.settings import PROJECT_HOME

SHIPPED = PROJECT_HOME / "acd/agents_1022.toml"
GOOD = SHIPPED.read_text(encoding="utf-8")


def write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "agents.toml"
    f.write_text(text, encoding="utf-8")
    return f


def conf_sections(text: str) -> list[tuple[str, str, dict[str, str]]]:
    """(name, template, {key: value}) of an Asterisk .conf file, in order."""
    out: list[tuple[str, str, dict[str, str]]] = []
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if m := re.match(r"^\[([^\]]+)\](?:\(([^)]*)\))?$", line):
            out.append((m[1], m[2] or "", {}))
        elif "=" in line and out:
            k, v = line.split("=", 1)
            out[-1][2][k.strip()] = v.strip()
    return out


def test_the_shipped_file_has_ten_agents_and_the_queues_of_queues_conf() -> None:
    cfg = load_acd(SHIPPED)
    assert list(cfg.agents) == [f"agent{n}" for n in range(101, 111)]
    queues_conf = (PROJECT_HOME / "asterisk_conf/queues.conf").read_text(encoding="utf-8")
    names = [n for n, tpl, _ in conf_sections(queues_conf) if tpl == "tongdai-queue"]
    assert sorted(cfg.queues) == sorted(names)
    assert cfg.agents["agent101"].name == "Nguyễn Thị Lan"
    assert cfg.agents["agent101"].endpoint == "PJSIP/agent101"
    for q in cfg.queues.values():
        serving = [
            a
            for a in cfg.agents.values()
            if all(a.skills.get(r.skill, 0) >= r.min_level for r in q.skills)
        ]
        assert len(serving) >= 2, f"queue {q.name} has fewer than 2 agents"
    assert cfg.max_calls == 100
    assert cfg.callback.mode == "caller_first"
    assert cfg.queues["thu_tuc"].strategy == "skills"
    assert cfg.queues["chung"].strategy == "longest_idle"
    assert cfg.queues["dau_tu"].overflow[0].queue == "chung"


def test_skills_as_a_list_mean_level_one_and_defaults_apply(tmp_path: Path) -> None:
    cfg = load_acd(SHIPPED)
    q = cfg.queues["tra_cuu_ho_so"]
    assert [(r.skill, r.min_level) for r in q.skills] == [("tra_cuu_ho_so", 1)]
    assert (q.ring_timeout_s, q.max_misses, q.strategy, q.priority) == (15, 3, "longest_idle", 0)
    assert cfg.queues["phan_anh"].priority == 5


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (
            ('skills = ["dau_tu"]', 'skills = ["dau_tuu"]'),
            "queues.dau_tu.skills.dau_tuu",
            "unknown skill",
        ),
        (
            ("skills = { thu_tuc = 5, tra_cuu_ho_so = 3, chung = 4 }", "skills = { thu_tuc = 6 }"),
            "agents.agent101.skills.thu_tuc",
            "1-5",
        ),
        (
            ('endpoint = "PJSIP/agent102"', 'endpoint = "PJSIP/agent101"'),
            "agents.agent102.endpoint",
            "already agent agent101's",
        ),
        (
            ('endpoint = "PJSIP/agent102"', 'endpoint = "SIP/agent102"'),
            "agents.agent102.endpoint",
            "PJSIP/<name>",
        ),
        (
            ('{ after_s = 180, queue = "chung" }', '{ after_s = 180, queue = "nowhere" }'),
            "queues.dau_tu.overflow.0.queue",
            "unknown queue",
        ),
        (
            ('{ after_s = 180, queue = "chung" }', '{ after_s = 180, queue = "dau_tu" }'),
            "queues.dau_tu.overflow.0.queue",
            "itself",
        ),
        (
            (
                '{ after_s = 180, queue = "chung" }',
                '{ after_s = 180, add_skills = ["chung"], queue = "chung" }',
            ),
            "queues.dau_tu.overflow.0.add_skills",
            "exactly one",
        ),
        (
            ('strategy = "skills"', 'strategy = "random"'),
            "queues.thu_tuc.strategy",
            "must be one of",
        ),
        (('mode = "caller_first"', 'mode = "whenever"'), "acd.callback.mode", "must be one of"),
        (('key = "1"', 'key = "12"'), "acd.callback.key", "one phone key"),
        (("max_calls = 100", "max_calls = 0"), "acd.max_calls", "between"),
        (("max_misses = 3", "max_misses = 1.5"), "queues.thu_tuc.max_misses", "whole number"),
        (("ring_timeout_s = 15", "ring_timeout_s = 1"), "queues.thu_tuc.ring_timeout_s", "between"),
        (
            ("announce_position = true", 'announce_position = "yes"'),
            "queues.thu_tuc.announce_position",
            "true or false",
        ),
        (("wrapup_s = 0", "wrapup_s = 0\ncolour = 1"), "queues.thu_tuc.colour", "unknown field"),
        (('name = "Trần Văn Minh"\n', ""), "agents.agent102.name", "required"),
    ],
)  # fmt: skip
def test_given_a_broken_acd_file_then_the_error_names_file_and_field(
    tmp_path: Path, change: tuple[str, str], field: str, problem: str
) -> None:
    assert change[0] in GOOD
    f = write(tmp_path, GOOD.replace(change[0], change[1], 1))
    with pytest.raises(ConfigError) as err:
        load_acd(f)
    assert err.value.file == str(f)
    assert err.value.field == field
    assert problem in err.value.problem


def test_given_an_unknown_skill_on_an_agent_then_it_is_named(tmp_path: Path) -> None:
    f = write(tmp_path, GOOD.replace("chung = 4 }", "tieng_anh = 4 }", 1))
    with pytest.raises(ConfigError, match=r"agents\.agent101\.skills\.tieng_anh: unknown skill"):
        load_acd(f)


def test_given_overflow_steps_out_of_order_then_it_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace(
        'overflow = [{ after_s = 90, add_skills = ["chung"] }]',
        'overflow = [{ after_s = 90, add_skills = ["chung"] }, { after_s = 30, queue = "chung" }]',
        1,
    )
    with pytest.raises(ConfigError) as err:
        load_acd(write(tmp_path, text))
    assert err.value.field == "queues.thu_tuc.overflow.1.after_s"


def test_given_invalid_toml_or_no_file_then_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_acd(write(tmp_path, "[acd\nmax_calls="))
    with pytest.raises(ConfigError, match="file not found"):
        load_acd(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="missing \\[acd\\] table"):
        load_acd(write(tmp_path, "[agents.a]\nname='x'\n"))


def test_the_generated_pjsip_agents_have_the_shape_of_the_lab_file() -> None:
    cfg = load_acd(SHIPPED)
    text = render_pjsip_agents(cfg, "10.0.0.9", 5090)
    got = conf_sections(text)
    lab = conf_sections((PROJECT_HOME / "asterisk_conf/pjsip_agents.conf").read_text("utf-8"))
    templates = {(n, t): kv for n, t, kv in lab if t.startswith("!")}
    assert {(n, t): kv for n, t, kv in got if t.startswith("!")} == templates
    # agents' phones end dead calls like callers' (pjsip.conf's template, which includes this)
    assert ("agent-endpoint", "!,dead-call-timers") in templates
    agents = [(n, t, kv) for n, t, kv in got if not t.startswith("!")]
    assert len(agents) == 2 * (len(cfg.agents) + len(cfg.supervisors))
    lab_101 = [(t, set(kv)) for n, t, kv in lab if n == "agent101"]
    assert [(t, set(kv)) for n, t, kv in agents if n == "agent101"] == lab_101
    by = {(n, t): kv for n, t, kv in agents}
    assert by[("agent110", "agent-aor")]["contact"] == "sip:agent110@10.0.0.9:5090"
    assert by[("agent110", "agent-endpoint")]["aors"] == "agent110"
    assert by[("agent101", "agent-endpoint")]["callerid"] == '"Nguyễn Thị Lan" <101>'
    assert "GENERATED from" in text


def test_the_shipped_file_declares_a_supervisor_phone_and_pjsip_generates_it() -> None:
    cfg = load_acd(SHIPPED)
    assert list(cfg.supervisors) == ["sup201"]
    sup = cfg.supervisors["sup201"]
    assert sup.endpoint == "PJSIP/sup201" and sup.pjsip_name == "sup201"
    assert cfg.supervisor_phone("PJSIP/sup201") is sup
    assert cfg.supervisor_phone("PJSIP/agent101") is None  # an agent's phone is not one
    by = {(n, t): kv for n, t, kv in conf_sections(render_pjsip_agents(cfg, "10.0.0.9", 5090))}
    assert by[("sup201", "agent-endpoint")]["aors"] == "sup201"
    assert by[("sup201", "agent-endpoint")]["callerid"] == '"Trương Thị Giám Sát" <201>'
    assert by[("sup201", "agent-aor")]["contact"] == "sip:sup201@10.0.0.9:5090"
    # the static lab file (distribution = "asterisk") has the same phone
    lab = conf_sections((PROJECT_HOME / "asterisk_conf/pjsip_agents.conf").read_text("utf-8"))
    assert [(n, t) for n, t, _ in lab if n == "sup201"] == [
        ("sup201", "agent-endpoint"),
        ("sup201", "agent-aor"),
    ]


def test_given_no_supervisors_table_then_none_and_only_agents_are_generated(
    tmp_path: Path,
) -> None:
    start = GOOD.index("[supervisors.sup201]")
    end = GOOD.index("\n\n", GOOD.index('endpoint = "PJSIP/sup201"'))
    cfg = load_acd(write(tmp_path, GOOD[:start] + GOOD[end:]))
    assert cfg.supervisors == {}
    assert "sup201" not in render_pjsip_agents(cfg)


SUP = '[supervisors.sup201]\nname = "Trương Thị Giám Sát"\nendpoint = "PJSIP/sup201"\n'
SUP_F = "supervisors.sup201."


@pytest.mark.parametrize(
    ("replacement", "field", "problem"),
    [
        ('[supervisors.sup201]\nendpoint = "PJSIP/sup201"\n', SUP_F + "name", "required"),
        (SUP.replace("PJSIP/sup201", "SIP/sup201"), SUP_F + "endpoint", "PJSIP/<name>"),
        (SUP.replace("PJSIP/sup201", "PJSIP/agent101"), SUP_F + "endpoint", "agent agent101's"),
        (SUP + "phone = 1\n", SUP_F + "phone", "unknown field"),
        (SUP.replace("sup201]", "Sup-201]"), "supervisors.Sup-201", "lowercase"),
        ('supervisors = "PJSIP/sup201"\n', "supervisors", "must be tables"),
        (
            SUP + SUP.replace("supervisors.sup201", "supervisors.sup202"),
            "supervisors.sup202.endpoint",
            "supervisor sup201's",
        ),
        (SUP.replace('"Trương Thị Giám Sát"', "201"), SUP_F + "name", "non-empty text"),
    ],
)
def test_given_a_broken_supervisors_table_then_the_error_names_file_and_field(
    tmp_path: Path, replacement: str, field: str, problem: str
) -> None:
    assert SUP in GOOD
    text = GOOD.replace(SUP, "")
    if replacement.startswith("supervisors ="):
        text = replacement + text  # a top-level key, before any table
    else:
        text += "\n" + replacement
    f = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_acd(f)
    assert err.value.file == str(f)
    assert err.value.field == field
    assert problem in err.value.problem
