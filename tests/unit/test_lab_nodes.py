"""``[lab] nodes = 2``: the settings it changes, what each Asterisk node is deployed with, the
Kamailio configuration the lab renders from ``kamailio_conf/`` (checked by ``kamailio -c``), and
the engine's per-node AMI health (no Asterisk or running Kamailio needed)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hotline.parts import make_more_amis
from hotline.watch import watch_ami
from lab import asterisk, kamailio, nodes
from lab.instance import LabInstance
from lab.procs import LabError
from pbx.fake import FakeEvent
from tongdai.errors import ConfigError
from tongdai.health import Health
from tongdai.settings import NODES_ENV, PROJECT_HOME, Settings, load_settings

SHIPPED = PROJECT_HOME / "kamailio_conf" / "kamailio.cfg"


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "tongdai.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def _two_nodes(tmp_path: Path, n: int = 9, extra: str = "") -> Settings:
    return _load(
        tmp_path,
        f'[lab]\ninstance = {n}\nnodes = 2\nchroot = "{tmp_path}/chroot"\n'
        f'var_dir = "{tmp_path}/var"\n[ami]\nsecret_file = "{tmp_path}/var/ami.secret"\n' + extra,
    )


def test_given_two_nodes_when_loaded_then_the_engine_follows_both_amis(tmp_path: Path) -> None:
    s = _two_nodes(tmp_path)
    assert (s.ami.host, s.ami.port) == ("127.0.0.11", 5938)
    assert s.ami.more_addresses() == [("127.0.0.12", 5938)]
    assert s.lab.queue_log.endswith("/var/log/tongdai-asterisk-9-n1/queue_log")
    assert s.lab.sip_port == 5960  # Kamailio's: where callers dial, as with one Asterisk


def test_given_two_nodes_and_explicit_ami_when_loaded_then_the_file_wins(tmp_path: Path) -> None:
    s = _two_nodes(tmp_path, extra='more_nodes = "10.0.0.2:5038, 10.0.0.3:5038"\n')
    assert s.ami.more_addresses() == [("10.0.0.2", 5038), ("10.0.0.3", 5038)]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[lab]\nnodes = 3\n", "lab.nodes"),
        ("[lab]\nnode = 1\n", "lab.node"),
        ('[ami]\nmore_nodes = "127.0.0.12"\n', "ami.more_nodes"),
        ('[ami]\nmore_nodes = "127.0.0.12:99999"\n', "ami.more_nodes"),
    ],
)
def test_given_bad_node_settings_when_loaded_then_config_error(
    tmp_path: Path, text: str, field: str
) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert err.value.field == field


def test_given_the_nodes_variable_when_loaded_then_two_nodes_unless_the_file_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NODES_ENV, "2")
    assert _load(tmp_path, "[lab]\ninstance = 4\n").lab.nodes == 2
    assert _load(tmp_path, "[lab]\ninstance = 4\nnodes = 1\n").lab.nodes == 1
    monkeypatch.setenv(NODES_ENV, "two")
    with pytest.raises(ConfigError):
        _load(tmp_path, "[lab]\ninstance = 4\n")


def test_given_two_nodes_then_no_port_folder_or_rtp_port_is_shared(tmp_path: Path) -> None:
    s = _two_nodes(tmp_path, n=9)
    whole = LabInstance.of(s)
    one, two = (LabInstance.of(nodes.node_settings(s, k)) for k in (1, 2))
    assert (one.host, two.host) == ("127.0.0.11", "127.0.0.12")
    assert one.sip_port == two.sip_port == whole.sip_port
    assert (one.rtp_start, one.rtp_end, two.rtp_start, two.rtp_end) == (37000, 37999, 38000, 38999)
    for attr in ("conf_dir", "run_dir", "log_dir", "spool_dir", "db_dir"):
        values = {getattr(whole, attr), getattr(one, attr), getattr(two, attr)}
        assert len(values) == 3, attr
    assert one.recordings_dir == two.recordings_dir == whole.recordings_dir
    assert one.lock_path == two.lock_path == whole.lock_path
    assert asterisk.markers(nodes.node_settings(s, 1)) != asterisk.markers(
        nodes.node_settings(s, 2)
    )
    with pytest.raises(LabError):
        nodes.node_settings(s, 3)


def test_given_node_2_when_deployed_then_its_address_systemname_and_agents_via_kamailio(
    tmp_path: Path,
) -> None:
    s = nodes.node_settings(_two_nodes(tmp_path, n=9), 2)
    deployed = asterisk.deploy_config(s, mount=False)
    assert deployed == tmp_path / "chroot/etc/tongdai-asterisk-9-n2"
    conf = (deployed / "asterisk.conf").read_text(encoding="utf-8")
    assert "systemname = tongdai-n2" in conf
    assert "astrundir => /run/tongdai-asterisk-9-n2" in conf
    assert "bind = 127.0.0.12:5960" in (deployed / "pjsip.conf").read_text(encoding="utf-8")
    manager = (deployed / "manager.conf").read_text(encoding="utf-8")
    assert "bindaddr = 127.0.0.12" in manager and "port = 5938" in manager
    agents = (deployed / "pjsip_agents.conf").read_text(encoding="utf-8")
    assert "contact = sip:agent101@127.0.0.1:5960" in agents and ":5980" not in agents
    # both nodes send FastAGI to the one engine
    assert "agi://127.0.0.1:5473/ivr" in (deployed / "extensions.conf").read_text(encoding="utf-8")


def test_given_node_1_with_our_own_acd_then_agents_are_rung_through_kamailio(
    tmp_path: Path,
) -> None:
    s = nodes.node_settings(_two_nodes(tmp_path, n=9, extra='[acd]\ndistribution = "engine"\n'), 1)
    agents = (asterisk.deploy_config(s, mount=False) / "pjsip_agents.conf").read_text(
        encoding="utf-8"
    )
    assert "contact = sip:agent101@127.0.0.1:5960" in agents


def test_given_a_lab_when_kamailio_is_rendered_then_its_addresses_and_files(
    tmp_path: Path,
) -> None:
    s = _two_nodes(tmp_path, n=9)
    text = kamailio.render_config(SHIPPED.read_text(encoding="utf-8"), s)
    folder = tmp_path / "var" / "kamailio"
    assert '#!substdef "!TD_LISTEN!udp:127.0.0.1:5960!g"' in text
    assert f'#!substdef "!TD_DISPATCHER_LIST!{folder}/dispatcher.list!g"' in text
    assert f'#!substdef "!TD_CTL!unix:{folder}/ctl.sock!g"' in text
    assert "udp:127.0.0.1:5060" not in text  # the shipped default is gone
    assert kamailio.dispatcher_list(s).splitlines()[1:] == [
        "1 sip:127.0.0.11:5960 0 0 duid=node1",
        "1 sip:127.0.0.12:5960 0 0 duid=node2",
    ]


def test_given_a_config_without_a_substdef_when_rendered_then_lab_error(tmp_path: Path) -> None:
    text = SHIPPED.read_text(encoding="utf-8").replace("!TD_CTL!", "!TD_CONTROL!")
    with pytest.raises(LabError, match="TD_CTL"):
        kamailio.render_config(text, _two_nodes(tmp_path))


def test_given_the_shipped_config_when_rendered_then_kamailio_accepts_it(tmp_path: Path) -> None:
    """Debian's kamailio (scripts/install.sh) parses it and loads every module it names."""
    s = _two_nodes(tmp_path, n=9)
    paths = kamailio.deploy(s)
    assert paths.config.exists() and paths.dispatcher_list.exists()
    broken = tmp_path / "broken.cfg"
    broken.write_text(
        paths.config.read_text(encoding="utf-8").replace("route(RELAY);", "route(RELAY"),
        encoding="utf-8",
    )
    done = subprocess.run(
        [kamailio.KAMAILIO_BIN, "-c", "-f", str(broken)], capture_output=True, timeout=15
    )
    assert done.returncode != 0  # the check would catch a broken file


def test_given_two_nodes_then_one_ami_client_per_further_node(tmp_path: Path) -> None:
    s = _two_nodes(tmp_path)
    assert make_more_amis(s) == {}  # no secret yet: nothing to log in with
    asterisk.ami_secret(s)
    clients = make_more_amis(s)
    assert list(clients) == ["asterisk@127.0.0.12:5938"]
    client = clients["asterisk@127.0.0.12:5938"]
    assert (client.host, client.port, client.username) == ("127.0.0.12", 5938, "tongdai")


async def _events(queue: asyncio.Queue[FakeEvent | None]) -> AsyncIterator[FakeEvent]:
    while (ev := await queue.get()) is not None:
        yield ev


async def _until(check: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def test_a_further_node_has_health_of_its_own() -> None:
    health = Health()
    first: asyncio.Queue[FakeEvent | None] = asyncio.Queue()
    second: asyncio.Queue[FakeEvent | None] = asyncio.Queue()
    tasks = [
        asyncio.create_task(watch_ami(health, _events(first), grace_s=60)),
        asyncio.create_task(watch_ami(health, _events(second), grace_s=60, name="asterisk@b")),
    ]
    await first.put(FakeEvent("__connected__"))
    await second.put(FakeEvent("__connected__"))
    await _until(lambda: {"asterisk", "asterisk@b"} <= set(health.snapshot()))
    await second.put(FakeEvent("__disconnected__", Reason="node killed"))
    await _until(lambda: health.degraded == ["asterisk@b"])
    assert health.snapshot()["asterisk"].up
    await first.put(None)
    await second.put(None)
    await asyncio.wait_for(asyncio.gather(*tasks), 3)


def test_given_node_1_deployed_then_simulate_registers_every_phone_it_rings(
    tmp_path: Path,
) -> None:
    from lab.simulate import phones_of

    s = _two_nodes(tmp_path, n=9, extra='[acd]\ndistribution = "engine"\n')
    deployed = asterisk.deploy_config(nodes.node_settings(s, 1), mount=False)
    phones = phones_of(s)
    assert "agent101" in phones and len(phones) == len(set(phones))
    text = (deployed / "pjsip_agents.conf").read_text(encoding="utf-8")
    assert all(f"contact = sip:{p}@127.0.0.1:5960" in text for p in phones)
