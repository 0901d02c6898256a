"""The Debian sid chroot that holds the lab's Asterisk 22 (Debian's own build).

Debian 12 has no Asterisk package; sid has Asterisk 22. ``ensure_chroot`` builds a minimal sid
tree with debootstrap, installs Asterisk into it, and records what it installed in a marker
file. A tree is built under a temporary name and renamed only once complete, so a half
install is never reused. On a complete tree the call is nearly free: it only rewrites the
chroot's ``/etc/hosts`` (Asterisk stalls on every failed DNS look-up, and there is no DNS
here) and installs packages added to ``PACKAGES`` since the tree was built.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from lab.lock import exclusive
from lab.procs import LabError

log = logging.getLogger(__name__)

SUITE = "sid"
MIRROR = "http://deb.debian.org/debian"
#: the music on hold package gives queues something better than silence
PACKAGES = ("asterisk", "asterisk-core-sounds-en", "asterisk-moh-opsound-gsm")
#: inside the chroot: what ensure_chroot installed (JSON)
MARKER = "etc/tongdai-chroot.json"
ASTERISK_BIN = "usr/sbin/asterisk"
#: a fresh debootstrap + install took ~30 s when measured; allow a slow mirror
_BUILD_TIMEOUT = 1800.0


def hosts_text(hostname: str) -> str:
    """The chroot's /etc/hosts: the names Asterisk resolves at start, all on loopback."""
    names = ["localhost", "A.ROOT-SERVERS.NET"]
    if hostname and hostname not in names:
        names.insert(1, hostname)
    return (
        "# Written by tongdai lab (lab/chroot.py) on every start: there is no DNS here and\n"
        "# Asterisk stalls on each failed look-up of these names.\n"
        f"127.0.0.1\t{' '.join(names)}\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
    )


def write_hosts(root: Path) -> None:
    """(Re)write ``root/etc/hosts`` atomically if it differs from what it should be."""
    target = root / "etc" / "hosts"
    text = hosts_text(socket.gethostname())
    try:
        if target.read_text(encoding="utf-8") == text:
            return
    except FileNotFoundError:
        pass
    tmp = target.with_name("hosts.tongdai-tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)


def installed_packages(root: Path) -> set[str]:
    """Packages dpkg inside ``root`` reports as fully installed (read from its status file)."""
    try:
        status = (root / "var/lib/dpkg/status").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return set()
    found: set[str] = set()
    for stanza in status.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Status") == "install ok installed" and "Package" in fields:
            found.add(fields["Package"])
    return found


def read_marker(root: Path) -> dict[str, object] | None:
    """The marker ensure_chroot wrote, or None."""
    try:
        data = json.loads((root / MARKER).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _marker_packages(root: Path) -> set[str]:
    marker = read_marker(root)
    packages = marker.get("packages") if marker else None
    return {p for p in packages if isinstance(p, str)} if isinstance(packages, list) else set()


def _write_marker(root: Path, packages: Sequence[str]) -> None:
    data = {
        "suite": SUITE,
        "mirror": MIRROR,
        "packages": sorted(packages),
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "by": "tongdai lab (lab/chroot.py)",
    }
    tmp = root / (MARKER + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(root / MARKER)


def _run(argv: Sequence[str], what: str) -> None:
    log.info("%s: %s", what, " ".join(argv))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C.UTF-8")
    try:
        result = subprocess.run(
            list(argv), env=env, capture_output=True, text=True, timeout=_BUILD_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{what} failed: {exc}") from exc
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise LabError(f"{what} failed (exit {result.returncode}):\n{tail}")


#: mirrors frozen at a snapshot (as on this project's build machines, whose own apt has the
#: same setting) serve a sid Release file past its Valid-Until date; signatures are still checked
APT_OPTIONS = ("-o", "Acquire::Check-Valid-Until=false")


def _apt_install(root: Path, packages: Sequence[str]) -> None:
    chroot = ["chroot", str(root)]
    _run([*chroot, "apt-get", *APT_OPTIONS, "update", "-q"], "apt-get update in the chroot")
    _run(
        [
            *chroot,
            "apt-get",
            *APT_OPTIONS,
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            *packages,
        ],
        f"installing {' '.join(packages)} in the chroot",
    )


def _debootstrap() -> str:
    found = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if found:
        return found
    _run(["apt-get", "install", "-y", "-q", "debootstrap"], "installing debootstrap on the host")
    return "/usr/sbin/debootstrap"


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    with open("/proc/mounts", encoding="utf-8") as fh:
        points = [line.split()[1].replace("\\040", " ") for line in fh if line.strip()]
    return [p for p in points if p == str(path) or p.startswith(prefix)]


def _remove_partial(partial: Path) -> None:
    mounted = _mounts_under(partial)
    if mounted:
        raise LabError(
            f"{partial} is a half-built chroot with file systems still mounted in it "
            f"({', '.join(mounted)}); unmount them, then remove it"
        )
    shutil.rmtree(partial)


def _build(root: Path) -> None:
    partial = root.with_name(f".{root.name}.partial")
    if partial.exists():
        log.info("removing a half-built chroot left by an interrupted run: %s", partial)
        _remove_partial(partial)
    root.parent.mkdir(parents=True, exist_ok=True)
    debootstrap = _debootstrap()
    _run(
        [debootstrap, "--variant=minbase", SUITE, str(partial), MIRROR],
        f"debootstrap {SUITE} into {partial}",
    )
    write_hosts(partial)
    _apt_install(partial, PACKAGES)
    _write_marker(partial, PACKAGES)
    partial.rename(root)


def ensure_chroot(path: str | Path) -> None:
    """Make ``path`` a complete sid chroot with Asterisk; idempotent and cheap when done. One
    at a time on this machine: labs side by side share the chroot."""
    with exclusive("chroot"):
        _ensure_chroot(Path(path))


def _ensure_chroot(root: Path) -> None:
    if not root.exists():
        log.info("building the Asterisk chroot in %s (about a minute)", root)
        _build(root)
    elif not (root / ASTERISK_BIN).exists():
        raise LabError(
            f"{root} exists but has no {ASTERISK_BIN}: not a tree tongdai built. "
            "Remove it (or set [lab] chroot to another path) and run again."
        )
    elif not set(PACKAGES) <= _marker_packages(root):
        # A tree from an older tongdai (or built by hand): trust dpkg, add what is missing.
        missing = [p for p in PACKAGES if p not in installed_packages(root)]
        if missing:
            write_hosts(root)
            _apt_install(root, missing)
        _write_marker(root, PACKAGES)
    write_hosts(root)
