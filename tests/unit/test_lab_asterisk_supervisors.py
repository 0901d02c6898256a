"""The lab's PJSIP phones with our own ACD: the supervisors' phones of the ACD file are deployed
next to the agents', so ChanSpy has a phone to ring (no Asterisk needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import asterisk
from tongdai.errors import ConfigError
from tongdai.settings import PROJECT_HOME, AcdSettings, AmiSettings, LabSettings, Settings

SHIPPED = (PROJECT_HOME / "acd/agents_1022.toml").read_text(encoding="utf-8")


def _settings(tmp_path: Path, distribution: str, config: Path | None = None) -> Settings:
    acd = AcdSettings(distribution=distribution)
    if config is not None:
        acd = AcdSettings(distribution=distribution, config=str(config))
    return Settings(
        lab=LabSettings(chroot=str(tmp_path / "chroot"), var_dir=str(tmp_path / "var")),
        ami=AmiSettings(secret_file=str(tmp_path / "var" / "ami.secret")),
        acd=acd,
    )


def _sections(text: str) -> set[tuple[str, str]]:
    out = set()
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("[") and "](" in line:
            name, template = line[1:].split("](", 1)
            out.add((name, template.rstrip(")")))
    return out


def test_given_engine_distribution_when_deployed_then_the_supervisor_phone_is_an_endpoint(
    tmp_path: Path,
) -> None:
    deployed = asterisk.deploy_config(_settings(tmp_path, "engine"), mount=False)
    text = (deployed / "pjsip_agents.conf").read_text(encoding="utf-8")
    assert "GENERATED from" in text
    found = _sections(text)
    assert {("sup201", "agent-endpoint"), ("sup201", "agent-aor")} <= found
    assert ("agent101", "agent-endpoint") in found
    assert "contact = sip:sup201@127.0.0.1:5080" in text


def test_given_a_second_supervisor_in_the_acd_file_when_deployed_then_it_is_there_too(
    tmp_path: Path,
) -> None:
    acd = tmp_path / "agents.toml"
    extra = '\n[supervisors.sup202]\nname = "Phó giám sát"\nendpoint = "PJSIP/sup202"\n'
    acd.write_text(SHIPPED + extra, encoding="utf-8")
    deployed = asterisk.deploy_config(_settings(tmp_path, "engine", acd), mount=False)
    found = _sections((deployed / "pjsip_agents.conf").read_text(encoding="utf-8"))
    assert {("sup201", "agent-aor"), ("sup202", "agent-endpoint"), ("sup202", "agent-aor")} <= found


def test_given_a_broken_supervisor_when_deployed_then_the_config_error_names_file_and_field(
    tmp_path: Path,
) -> None:
    acd = tmp_path / "agents.toml"
    acd.write_text(SHIPPED.replace('endpoint = "PJSIP/sup201"', 'endpoint = "sup201"'), "utf-8")
    with pytest.raises(ConfigError) as err:
        asterisk.deploy_config(_settings(tmp_path, "engine", acd), mount=False)
    assert err.value.file == str(acd) and err.value.field == "supervisors.sup201.endpoint"


def test_given_asterisk_distribution_when_deployed_then_the_shipped_file_has_the_phone(
    tmp_path: Path,
) -> None:
    deployed = asterisk.deploy_config(_settings(tmp_path, "asterisk"), mount=False)
    text = (deployed / "pjsip_agents.conf").read_text(encoding="utf-8")
    assert "GENERATED from" not in text
    assert {("sup201", "agent-endpoint"), ("sup201", "agent-aor")} <= _sections(text)
