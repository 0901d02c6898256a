"""``[lab] instance = N``: the settings it moves, the Asterisk configuration it deploys, and
proof that no two instances share a port, a folder or a lock (no Asterisk needed)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from lab import asterisk
from lab.instance import LabInstance, worker_instance
from tongdai.errors import ConfigError
from tongdai.settings import PROJECT_HOME, Settings, load_settings

CONF = PROJECT_HOME / "asterisk_conf"


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "tongdai.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def _instance(tmp_path: Path, n: int, extra: str = "") -> Settings:
    chroot = tmp_path / "chroot"
    return _load(
        tmp_path,
        f'[lab]\ninstance = {n}\nchroot = "{chroot}"\nvar_dir = "{tmp_path}/var"\n'
        f'[ami]\nsecret_file = "{tmp_path}/var/ami.secret"\n' + extra,
    )


def test_given_instance_2_when_loaded_then_ports_and_engine_files_move(tmp_path: Path) -> None:
    s = _load(tmp_path, "[lab]\ninstance = 2\n")
    assert (s.lab.sip_port, s.ami.port, s.fastagi.port, s.web.port) == (5260, 5238, 4773, 8222)
    assert s.lab.var_dir == "var/lab-2"
    assert s.database.state_dir == "var/state-2"
    assert s.acd.queue_log == "var/queue_log-2"
    assert s.lab.queue_log == f"{s.lab.chroot}/var/log/tongdai-asterisk-2/queue_log"
    assert s.ivr.asterisk_sounds_dir == "/srv/tongdai/recordings-2/prompts/vi"
    assert s.ivr.asterisk_messages_dir == "/srv/tongdai/recordings-2/messages"
    inst = LabInstance.of(s)
    assert (inst.agents_port, inst.citizens_port) == (5280, 5290)
    assert (inst.rtp_start, inst.rtp_end) == (23000, 24999)
    assert str(inst.lock_path) == "/run/lock/tongdai-lab-2.lock"


def test_given_instance_and_an_explicit_port_when_loaded_then_the_file_wins(
    tmp_path: Path,
) -> None:
    s = _load(tmp_path, "[lab]\ninstance = 1\n[ami]\nport = 6038\n[web]\nenabled = false\n")
    assert (s.ami.port, s.fastagi.port, s.web.port, s.web.enabled) == (6038, 4673, 8122, False)


def test_given_no_instance_when_loaded_then_the_documented_lab(tmp_path: Path) -> None:
    s = _load(tmp_path, "[acd]\nannounce_every_s = 5\n")
    assert s == Settings(source=s.source, acd=s.acd)
    inst = LabInstance.of(s)
    assert (inst.number, inst.agents_port, inst.citizens_port) == (0, 5080, 5090)
    assert inst.asterisk_conf == asterisk.ASTERISK_CONF


@pytest.mark.parametrize("n", [10, -1])
def test_given_an_instance_out_of_range_when_loaded_then_config_error(
    tmp_path: Path, n: int
) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, f"[lab]\ninstance = {n}\n")
    assert info.value.field == "lab.instance"


def test_given_every_instance_then_no_port_folder_or_lock_is_shared(tmp_path: Path) -> None:
    labs = [LabInstance.of(_load(tmp_path, f"[lab]\ninstance = {n}\n")) for n in range(10)]
    for a, b in itertools.combinations(labs, 2):
        ports_a = {a.sip_port, a.ami_port, a.fastagi_port, a.web_port}
        ports_a |= {a.agents_port, a.citizens_port}
        ports_b = {b.sip_port, b.ami_port, b.fastagi_port, b.web_port}
        ports_b |= {b.agents_port, b.citizens_port}
        assert not ports_a & ports_b, (a.number, b.number)
        assert a.rtp_end < b.rtp_start or b.rtp_end < a.rtp_start, (a.number, b.number)
        assert not set(ports_a | ports_b) & set(range(b.rtp_start, b.rtp_end + 1))
        for field in ("conf_dir", "run_dir", "log_dir", "spool_dir", "db_dir", "recordings_dir"):
            assert getattr(a, field) != getattr(b, field), field
        assert a.lock_path != b.lock_path
    assert all(len({x.sip_port, x.ami_port, x.fastagi_port, x.web_port}) == 4 for x in labs)
    assert {5432, 6379}.isdisjoint(p for x in labs for p in (x.sip_port, x.ami_port, x.web_port))


def test_given_instance_3_when_deployed_then_asterisk_gets_its_own_folders_and_ports(
    tmp_path: Path,
) -> None:
    s = _instance(tmp_path, 3, '[acd]\ndistribution = "engine"\n')
    deployed = asterisk.deploy_config(s, mount=False)
    assert deployed == tmp_path / "chroot/etc/tongdai-asterisk-3"
    conf = (deployed / "asterisk.conf").read_text(encoding="utf-8")
    for line in (
        "astetcdir => /etc/tongdai-asterisk-3",
        "astrundir => /run/tongdai-asterisk-3",
        "astlogdir => /var/log/tongdai-asterisk-3",
        "astspooldir => /var/spool/tongdai-asterisk-3",
        "astdbdir => /var/lib/tongdai-asterisk-3",
    ):
        assert line in conf
    rtp = (deployed / "rtp.conf").read_text(encoding="utf-8")
    assert "rtpstart = 25000" in rtp and "rtpend = 26999" in rtp
    pjsip = (deployed / "pjsip.conf").read_text(encoding="utf-8")
    assert "bind = 127.0.0.1:5360" in pjsip and "contact = sip:127.0.0.1:5390" in pjsip
    agents = (deployed / "pjsip_agents.conf").read_text(encoding="utf-8")
    assert "contact = sip:agent101@127.0.0.1:5380" in agents and ":5080" not in agents
    assert "port = 5338" in (deployed / "manager.conf").read_text(encoding="utf-8")
    assert "agi://127.0.0.1:4873/ivr" in (deployed / "extensions.conf").read_text(encoding="utf-8")
    argv = asterisk.asterisk_argv(s, "-rx", "core show version")
    assert argv[-3:-2] == ["/etc/tongdai-asterisk-3/asterisk.conf"]
    assert asterisk.markers(s) == (asterisk.ASTERISK_BIN, "/etc/tongdai-asterisk-3/asterisk.conf")
    paths = asterisk.LabPaths.of(s)
    assert paths.recordings_mount == tmp_path / "chroot/srv/tongdai/recordings-3"


def test_given_instance_0_when_deployed_then_the_shipped_folders_and_rtp_range(
    tmp_path: Path,
) -> None:
    deployed = asterisk.deploy_config(_instance(tmp_path, 0), mount=False)
    assert deployed == tmp_path / "chroot/etc/tongdai-asterisk"
    for name in ("asterisk.conf", "rtp.conf", "pjsip_agents.conf"):
        assert (deployed / name).read_text(encoding="utf-8") == (CONF / name).read_text(
            encoding="utf-8"
        )


@pytest.mark.parametrize(
    ("worker", "override", "expected"),
    [(None, None, 1), ("gw0", None, 1), ("gw3", None, 4), ("master", None, 1), ("gw1", "6", 6)],
)
def test_given_a_test_worker_when_choosing_the_instance_then_never_0_unless_asked(
    worker: str | None, override: str | None, expected: int
) -> None:
    assert worker_instance(worker, override) == expected
