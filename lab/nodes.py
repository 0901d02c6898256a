"""A lab of two Asterisk nodes behind Kamailio (``[lab] nodes = 2``, ``tongdai lab up --nodes 2``).

Both nodes run from the same chroot with folders of their own (``lab.instance``: node k binds
127.0.0.(10 + k) on the instance's SIP and AMI ports, its uniqueids start ``tongdai-nk-``);
Kamailio (``lab.kamailio``) takes the instance's SIP port on 127.0.0.1, spreads 1022 calls
over the nodes and is the registrar the agents' phones register with. The one engine serves
FastAGI for both (their dialplans point at the same address) and follows both nodes' AMI
(``[ami] more_nodes``). Everything runs under the instance's lab lock.

``node_settings(settings, k)`` is the view of one node: the same settings with ``lab.node = k``,
that node's AMI address and a var folder of its own (its pid file and log), so
``lab.asterisk.start``/``stop``/``rx`` work on it unchanged.
"""

from __future__ import annotations

import dataclasses

from lab import asterisk, kamailio, lock
from lab.procs import LabError
from tongdai.settings import Settings, node_host


def node_settings(settings: Settings, k: int) -> Settings:
    """The settings of node ``k`` (1 or 2) of a two-node lab."""
    if not 1 <= k <= settings.lab.nodes:
        raise LabError(f"node {k}: this lab has {settings.lab.nodes} node(s)")
    lab = dataclasses.replace(settings.lab, node=k, var_dir=f"{settings.lab.var_dir}/node-{k}")
    ami = dataclasses.replace(settings.ami, host=node_host(k), more_nodes="")
    return dataclasses.replace(settings, lab=lab, ami=ami)


def all_nodes(settings: Settings) -> list[Settings]:
    """Every node's settings, node 1 first."""
    return [node_settings(settings, k) for k in range(1, settings.lab.nodes + 1)]


def start(settings: Settings) -> dict[str, int]:
    """Start both Asterisk nodes, then Kamailio; their pids by name (``node1``, ``node2``,
    ``kamailio``). What already runs is left alone. On a failure what this call started is
    stopped again."""
    if settings.lab.nodes < 2:
        raise LabError("lab.nodes is 1: start the lab's single Asterisk (lab.asterisk.start)")
    now = running(settings)
    if all(pid is not None for pid in now.values()):
        return {name: pid for name, pid in now.items() if pid is not None}
    if any(pid is not None for pid in now.values()):
        # what runs holds the lab lock: starting the rest would wait for ourselves
        up = ", ".join(name for name, pid in now.items() if pid is not None)
        raise LabError(f"the two-node lab runs only in part ({up}): `tongdai lab down` first")
    pids: dict[str, int] = {}
    with lock.hold(settings):
        try:
            for k, node in enumerate(all_nodes(settings), start=1):
                pids[f"node{k}"] = asterisk.start(node)
            pids["kamailio"] = kamailio.start(settings)
        except BaseException:
            stop(settings)
            raise
    return pids


def stop(settings: Settings) -> dict[str, bool]:
    """Stop Kamailio and the nodes (node 1 last: it holds the recordings mount); what was
    running, by name."""
    was = {"kamailio": kamailio.stop(settings)}
    for k, node in reversed(list(enumerate(_possible_nodes(settings), start=1))):
        was[f"node{k}"] = asterisk.stop(node)
    return was


def _possible_nodes(settings: Settings) -> list[Settings]:
    # `lab down` stops a two-node lab even when the settings it was given say nodes = 1
    wide = dataclasses.replace(settings, lab=dataclasses.replace(settings.lab, nodes=2))
    return all_nodes(wide)


def running(settings: Settings) -> dict[str, int | None]:
    """The pids of Kamailio and the nodes (None: not running)."""
    out: dict[str, int | None] = {"kamailio": kamailio.running_pid(settings)}
    for k, node in enumerate(_possible_nodes(settings), start=1):
        out[f"node{k}"] = asterisk.running_pid(node)
    return out
