"""The shipped Asterisk configuration and how the lab deploys it (no Asterisk needed)."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from lab import asterisk
from tongdai.errors import ConfigError
from tongdai.settings import (
    PROJECT_HOME,
    AmiSettings,
    FastAgiSettings,
    LabSettings,
    Settings,
)

CONF = PROJECT_HOME / "asterisk_conf"
QUEUES = (
    "thu_tuc", "tra_cuu_ho_so", "phan_anh", "dau_tu", "du_lich", "buu_chinh", "su_co", "chung",
)  # fmt: skip

Section = tuple[str, str, list[tuple[str, str]]]  # name, template spec, (key, value) lines


def parse(path: Path) -> list[Section]:
    """Asterisk's config syntax, enough for these files: [name](templates), key = / => value."""
    sections: list[Section] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        header = re.fullmatch(r"\[([^\]]+)\](?:\(([^)]*)\))?", line)
        if header:
            sections.append((header[1], header[2] or "", []))
            continue
        key, sep, value = line.partition("=>") if "=>" in line else line.partition("=")
        assert sep, f"{path.name}: not a key/value line: {raw!r}"
        sections[-1][2].append((key.strip(), value.strip()))
    return sections


def section(path: Path, name: str, kind: str | None = None) -> dict[str, list[str]]:
    """Values of one section (with its templates' values first, templates of templates
    before them), keyed by option. Templates may come from a file that ``#include``s
    ``path`` (pjsip.conf defines the template pjsip_agents.conf's agents inherit)."""
    found = parse(path)
    includers = [
        f for f in CONF.glob("*.conf") if f"#include {path.name}" in f.read_text(encoding="utf-8")
    ]
    known = [s for f in includers for s in parse(f)] + found

    def values_of(spec: str, lines: list[tuple[str, str]]) -> dict[str, list[str]]:
        values: dict[str, list[str]] = {}
        for template in (t for t in spec.split(",") if t and t != "!"):
            tspec, tlines = next((t, v) for n, t, v in known if n == template and "!" in t)
            for key, got in values_of(tspec, tlines).items():
                values.setdefault(key, []).extend(got)
        for key, value in lines:
            values.setdefault(key, []).append(value)
        return values

    for n, spec, lines in found:
        values = values_of(spec, lines)
        if n == name and (kind is None or values.get("type") == [kind]):
            return values
    raise AssertionError(f"no section [{name}] (type {kind}) in {path.name}")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        lab=LabSettings(chroot=str(tmp_path / "chroot"), var_dir=str(tmp_path / "var")),
        ami=AmiSettings(secret_file=str(tmp_path / "var" / "ami.secret")),
    )


def test_given_the_repo_when_read_then_no_ami_secret_is_committed() -> None:
    for path in CONF.glob("*.conf"):
        for key, _value in (kv for _, _, lines in parse(path) for kv in lines):
            assert key != "secret", f"{path.name} holds a secret"
    assert not (CONF / asterisk.MANAGER_INCLUDE).exists()


def test_given_manager_conf_when_read_then_ami_listens_on_loopback_only() -> None:
    general = section(CONF / "manager.conf", "general")
    assert general["enabled"] == ["yes"]
    assert general["bindaddr"] == ["127.0.0.1"]
    assert general["port"] == ["5038"]
    assert "#tryinclude manager_tongdai.conf" in (CONF / "manager.conf").read_text()


def test_given_a_fresh_home_when_deployed_twice_then_one_secret_mode_0600_is_reused(
    settings: Settings, tmp_path: Path
) -> None:
    deployed = asterisk.deploy_config(settings, mount=False)
    secret_file = tmp_path / "var" / "ami.secret"
    first = secret_file.read_text().strip()
    assert len(first) >= 32
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    account = deployed / asterisk.MANAGER_INCLUDE
    assert stat.S_IMODE(account.stat().st_mode) == 0o600
    user = section(account, "tongdai")
    assert user["secret"] == [first]
    assert user["permit"] == ["127.0.0.1/255.255.255.255"]
    assert "originate" in user["write"][0] and "agent" in user["read"][0]

    asterisk.deploy_config(settings, mount=False)
    assert secret_file.read_text().strip() == first
    assert section(account, "tongdai")["secret"] == [first]
    assert first not in "".join(p.read_text() for p in CONF.iterdir())


def test_given_settings_ports_when_deployed_then_files_use_them(tmp_path: Path) -> None:
    settings = Settings(
        lab=LabSettings(chroot=str(tmp_path / "c"), var_dir=str(tmp_path / "v"), sip_port=5062),
        ami=AmiSettings(port=5040, secret_file=str(tmp_path / "v" / "s")),
        fastagi=FastAgiSettings(host="0.0.0.0", port=4600),
    )
    deployed = asterisk.deploy_config(settings, mount=False)
    assert section(deployed / "pjsip.conf", "transport-udp")["bind"] == ["127.0.0.1:5062"]
    assert section(deployed / "manager.conf", "general")["port"] == ["5040"]
    assert "AGI(agi://127.0.0.1:4600/ivr)" in (deployed / "extensions.conf").read_text()
    # the repository copy keeps the production defaults
    assert "AGI(agi://127.0.0.1:4573/ivr)" in (CONF / "extensions.conf").read_text()


def test_given_a_file_removed_from_the_repo_when_deployed_then_it_is_removed_too(
    settings: Settings,
) -> None:
    deployed = asterisk.deploy_config(settings, mount=False)
    (deployed / "old_leftover.conf").write_text("[x]\n")
    asterisk.deploy_config(settings, mount=False)
    assert not (deployed / "old_leftover.conf").exists()
    assert (deployed / asterisk.MANAGER_INCLUDE).exists()
    assert sorted(p.name for p in deployed.glob("*.conf")) == sorted(
        [p.name for p in CONF.glob("*.conf")] + [asterisk.MANAGER_INCLUDE]
    )


def test_given_a_template_without_the_expected_line_when_rendered_then_config_error_names_it(
    settings: Settings,
) -> None:
    with pytest.raises(ConfigError) as info:
        asterisk.render("pjsip.conf", "[transport-udp]\nbind = 0.0.0.0:5060\n", settings, CONF)
    assert info.value.file.endswith("asterisk_conf/pjsip.conf")
    assert info.value.field == "lab.sip_port"


def test_given_a_bad_ami_username_when_rendering_the_account_then_config_error() -> None:
    bad = Settings(source="tongdai.toml", ami=AmiSettings(username="x]\n[evil"))
    with pytest.raises(ConfigError, match=r"tongdai.toml: ami.username"):
        asterisk.manager_conf_text(bad, "s3cret")


def test_given_asterisk_conf_when_read_then_only_the_config_folder_moves() -> None:
    directories = section(CONF / "asterisk.conf", "directories")
    assert directories == {"astetcdir": ["/etc/tongdai-asterisk"]}
    # "[directories](!)" (as in the stock sample) would be a template Asterisk ignores
    assert [spec for name, spec, _ in parse(CONF / "asterisk.conf") if name == "directories"] == [
        ""
    ]


def test_given_pjsip_conf_when_read_then_callers_are_anonymous_and_agents_not_identified() -> None:
    transport = section(CONF / "pjsip.conf", "transport-udp")
    assert transport["bind"] == ["127.0.0.1:5060"]
    anonymous = section(CONF / "pjsip.conf", "anonymous", "endpoint")
    assert anonymous["context"] == ["tongdai-inbound"]
    assert anonymous["dtmf_mode"] == ["rfc4733"]
    assert anonymous["direct_media"] == ["no"]
    assert anonymous["allow"] == ["ulaw,alaw"]
    # a caller whose network dropped (no BYE) is cut after 30 s without media
    dead_calls = {"rtp_timeout": ["30"], "rtp_timeout_hold": ["300"], "timers": ["always"]}
    assert {k: anonymous[k] for k in dead_calls} == dead_calls
    citizens = section(CONF / "pjsip.conf", "citizens", "endpoint")
    assert {k: citizens[k] for k in dead_calls} == dead_calls

    agents = CONF / "pjsip_agents.conf"
    types = {value for _, _, lines in parse(agents) for key, value in lines if key == "type"}
    assert types == {"endpoint", "aor"}  # no "identify": nothing outside is taken for an agent
    for n in range(101, 121):
        endpoint = section(agents, f"agent{n}", "endpoint")
        assert endpoint["context"] == ["tongdai-agents"]
        assert endpoint["identify_by"] == ["ip"]
        assert {k: endpoint[k] for k in dead_calls} == dead_calls
        aor = section(agents, f"agent{n}", "aor")
        assert aor["contact"] == [f"sip:agent{n}@127.0.0.1:5080"]
        assert aor["max_contacts"] == ["0"]
    modules = (CONF / "modules.conf").read_text()
    assert "load = res_pjsip_endpoint_identifier_user.so" not in modules


def test_given_queues_conf_when_read_then_every_category_has_the_lab_members() -> None:
    for name in QUEUES:
        queue = section(CONF / "queues.conf", name)
        assert queue["strategy"] == ["leastrecent"]
        assert queue["autofill"] == ["yes"] and queue["ringinuse"] == ["no"]
        members = [m.split(",")[0] for m in queue["member"]]
        assert members == [f"PJSIP/agent{n}" for n in range(101, 106)]
    logger = section(CONF / "logger.conf", "general")
    assert logger["queue_log"] == ["yes"]


def test_given_extensions_conf_when_read_then_the_engine_contract_is_there() -> None:
    text = (CONF / "extensions.conf").read_text()
    assert "exten => 1022,1," in text
    for needle in (
        "AGI(agi://127.0.0.1:4573/ivr)",
        '$["${AGISTATUS}" = "FAILURE"]?tongdai-rejoin,s,1',
        '$["${TONGDAI_ACTION}" = "queue"]?queue',
        "Queue(${TONGDAI_QUEUE},t,,,",
        '${IF($["${TONGDAI_MAXWAIT}" = ""]?1800:${TONGDAI_MAXWAIT})}',
        '$["${QUEUESTATUS}" = "UNKNOWN"]?fallback',
        "n(fallback)",
        "Queue(chung,t,,,1800)",
        "exten => _X.,1,Hangup(1)",
    ):
        assert needle in text, needle


def test_given_modules_conf_when_read_then_autoload_is_off_and_essentials_load() -> None:
    modules = section(CONF / "modules.conf", "modules")
    assert modules["autoload"] == ["no"]
    for needed in ("chan_pjsip.so", "res_agi.so", "app_queue.so", "res_timing_timerfd.so"):
        assert needed in modules["load"]
