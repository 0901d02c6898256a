"""``tongdai bench ivr --nodes 2``: which journeys it runs, the settings it writes and how it
counts the calls each node took (no Asterisk needed)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from bench.ivr_bench import NO_AGENT_JOURNEYS, add_arguments, cmd_bench_ivr, write_settings
from bench.ivr_journeys import BY_NAME
from bench.ivr_load import calls_per_node, tree_usage
from lab.procs import LabError
from tongdai.settings import Settings, load_settings


def test_the_two_node_journeys_never_reach_an_agent() -> None:
    assert NO_AGENT_JOURNEYS
    assert all(BY_NAME[j].ending != "agent" for j in NO_AGENT_JOURNEYS)
    assert set(BY_NAME) - set(NO_AGENT_JOURNEYS)  # the agents' journeys are left out


def test_given_two_nodes_and_an_agent_journey_then_the_bench_refuses() -> None:
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--concurrent", "4", "--nodes", "2", "--journeys", "operator"])
    args.config = None
    with pytest.raises(LabError, match="operator"):
        cmd_bench_ivr(args)


def test_given_two_nodes_then_the_run_settings_say_so(tmp_path: Path) -> None:
    path = write_settings(Settings(), tmp_path, "sqlite+aiosqlite:///x.db", 2, 10, nodes=2)
    s = load_settings(path)
    assert s.lab.nodes == 2
    assert (s.ami.host, s.ami.more_nodes) == ("127.0.0.11", "127.0.0.12:5038")


def test_calls_per_node_counts_caller_channels_not_agents_nor_strangers() -> None:
    events = [
        {"Event": "Newchannel", "CallerIDNum": "0801", "Uniqueid": "a.1", "_node": "1",
         "Channel": "PJSIP/anonymous-1"},
        {"Event": "Newchannel", "CallerIDNum": "0802", "Uniqueid": "b.1", "_node": "2",
         "Channel": "PJSIP/anonymous-1"},
        {"Event": "Newchannel", "CallerIDNum": "0803", "Uniqueid": "b.2", "_node": "2",
         "Channel": "PJSIP/anonymous-2"},
        {"Event": "Newchannel", "CallerIDNum": "0803", "Uniqueid": "b.3", "_node": "2",
         "Channel": "PJSIP/agent101-3"},
        {"Event": "Newchannel", "CallerIDNum": "0999", "Uniqueid": "b.4", "_node": "2",
         "Channel": "PJSIP/anonymous-4"},
        {"Event": "Hangup", "CallerIDNum": "0801", "Uniqueid": "a.1", "_node": "1",
         "Channel": "PJSIP/anonymous-1"},
    ]  # fmt: skip
    assert calls_per_node(events, {"0801", "0802", "0803"}) == {"node1": 1, "node2": 2}


def test_given_a_lab_instance_then_the_run_keeps_it_and_its_recordings_mount(
    tmp_path: Path,
) -> None:
    base_file = tmp_path / "base.toml"
    base_file.write_text("[lab]\ninstance = 9\n", encoding="utf-8")
    path = write_settings(load_settings(base_file), tmp_path, "sqlite+aiosqlite:///x.db", 2, 10)
    s = load_settings(path)
    assert (s.lab.instance, s.lab.sip_port, s.ami.port) == (9, 5960, 5938)
    assert s.ivr.asterisk_messages_dir == f"/srv/tongdai/recordings-9/messages/{tmp_path.name}"
    assert s.ivr.asterisk_sounds_dir.startswith("/srv/tongdai/recordings-9/")


def test_tree_usage_adds_the_children_of_a_process(tmp_path: Path) -> None:
    """Kamailio's CPU is in its worker processes: the parent's own figures would say 0."""
    tick = os.sysconf("SC_CLK_TCK")

    def fake(pid: int, ppid: int, ticks: int, hwm_kb: int) -> None:
        d = tmp_path / str(pid)
        d.mkdir()
        rest = ["S", str(ppid)] + ["0"] * 9 + [str(ticks), "0"] + ["0"] * 10
        (d / "stat").write_text(f"{pid} (kamailio) " + " ".join(rest) + "\n")
        (d / "status").write_text(f"Name:\tkamailio\nVmHWM:\t{hwm_kb} kB\n")

    fake(100, 1, 0, 10240)
    fake(101, 100, 2 * tick, 2048)
    fake(102, 100, 3 * tick, 2048)
    fake(200, 1, 50 * tick, 4096)  # not a child: left out
    (tmp_path / "self").mkdir()
    usage = tree_usage(100, tmp_path)
    assert usage.cpu_s == pytest.approx(5.0)
    assert usage.peak_rss_mb == pytest.approx(14.0)


def test_given_instance_9_then_the_plain_dialplan_mode_is_refused(tmp_path: Path) -> None:
    base_file = tmp_path / "base.toml"
    base_file.write_text("[lab]\ninstance = 9\n", encoding="utf-8")
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--concurrent", "4", "--modes", "ours,dialplan"])
    args.config = str(base_file)
    with pytest.raises(LabError, match="instance 0 only"):
        cmd_bench_ivr(args)
