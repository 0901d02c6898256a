"""ensure_chroot decisions on fake trees: reuse, top up, build then rename, refuse."""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from pathlib import Path

import pytest

from lab import chroot
from lab.procs import LabError


def _status(packages: Sequence[str], broken: Sequence[str] = ()) -> str:
    stanzas = [f"Package: {p}\nStatus: install ok installed\nVersion: 1\n" for p in packages]
    stanzas += [f"Package: {p}\nStatus: deinstall ok config-files\n" for p in broken]
    return "\n".join(stanzas)


def _tree(root: Path, packages: Sequence[str] = chroot.PACKAGES) -> Path:
    (root / "usr/sbin").mkdir(parents=True)
    (root / chroot.ASTERISK_BIN).write_text("#!/bin/sh\n")
    (root / "etc").mkdir()
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(_status(packages))
    return root


class Recorder:
    """Stands in for lab.chroot._run: records commands, simulates debootstrap."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], what: str) -> None:
        self.calls.append(list(argv))
        if argv[0] == "debootstrap":
            _tree(Path(argv[3]), packages=())


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    monkeypatch.setattr(chroot, "_run", rec)
    monkeypatch.setattr(chroot, "_debootstrap", lambda: "debootstrap")
    return rec


def test_given_a_hostname_when_hosts_written_then_names_resolve_to_loopback(tmp_path: Path) -> None:
    text = chroot.hosts_text("pbx-01")
    assert "127.0.0.1\tlocalhost pbx-01 A.ROOT-SERVERS.NET\n" in text
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/hosts").write_text("10.0.0.1 stale\n")
    chroot.write_hosts(tmp_path)
    written = (tmp_path / "etc/hosts").read_text()
    assert socket.gethostname() in written and "stale" not in written


def test_given_a_dpkg_status_when_read_then_only_installed_packages(tmp_path: Path) -> None:
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(_status(["asterisk", "bash"], broken=["old"]))
    assert chroot.installed_packages(tmp_path) == {"asterisk", "bash"}
    assert chroot.installed_packages(tmp_path / "nothing") == set()


def test_given_a_complete_tree_with_marker_when_ensured_then_nothing_runs(
    tmp_path: Path, recorder: Recorder
) -> None:
    root = _tree(tmp_path / "root")
    chroot._write_marker(root, chroot.PACKAGES)
    chroot.ensure_chroot(root)
    assert recorder.calls == []
    assert "A.ROOT-SERVERS.NET" in (root / "etc/hosts").read_text()


def test_given_a_complete_tree_without_marker_when_ensured_then_marker_written_without_apt(
    tmp_path: Path, recorder: Recorder
) -> None:
    root = _tree(tmp_path / "root")
    chroot.ensure_chroot(root)
    assert recorder.calls == []
    marker = chroot.read_marker(root)
    assert marker is not None and marker["packages"] == sorted(chroot.PACKAGES)


def test_given_a_tree_missing_a_package_when_ensured_then_only_that_is_installed(
    tmp_path: Path, recorder: Recorder
) -> None:
    root = _tree(tmp_path / "root", packages=["asterisk", "asterisk-core-sounds-en"])
    chroot.ensure_chroot(root)
    install = recorder.calls[-1]
    assert install[:2] == ["chroot", str(root)]
    assert install[2] == "apt-get" and "install" in install
    assert "Acquire::Check-Valid-Until=false" in install  # the mirror is a frozen snapshot
    assert install[-1] == "asterisk-moh-opsound-gsm"
    assert "asterisk" not in install
    assert chroot.read_marker(root) is not None


def test_given_no_tree_when_ensured_then_built_aside_and_renamed(
    tmp_path: Path, recorder: Recorder
) -> None:
    root = tmp_path / "lib" / "chroot-sid"
    chroot.ensure_chroot(root)
    partial = root.with_name(f".{root.name}.partial")
    assert recorder.calls[0] == [
        "debootstrap",
        "--variant=minbase",
        "sid",
        str(partial),
        chroot.MIRROR,
    ]
    assert recorder.calls[-1][-len(chroot.PACKAGES) :] == list(chroot.PACKAGES)
    assert root.is_dir() and not partial.exists()
    assert json.loads((root / chroot.MARKER).read_text())["suite"] == "sid"
    assert (root / "etc/hosts").exists()


def test_given_a_failed_build_when_ensured_again_then_the_partial_tree_is_discarded(
    tmp_path: Path, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "chroot-sid"
    partial = root.with_name(f".{root.name}.partial")
    (partial / "half").mkdir(parents=True)

    def fail_apt(argv: Sequence[str], what: str) -> None:
        recorder(argv, what)
        if "install" in argv:
            raise LabError("mirror unreachable")

    monkeypatch.setattr(chroot, "_run", fail_apt)
    with pytest.raises(LabError, match="mirror unreachable"):
        chroot.ensure_chroot(root)
    assert not root.exists()  # a half install is never taken for a chroot
    assert not (partial / "half").exists()  # the older leftover was removed first
    monkeypatch.setattr(chroot, "_run", recorder)
    chroot.ensure_chroot(root)
    assert root.is_dir() and not partial.exists()


def test_given_a_foreign_folder_when_ensured_then_refused(
    tmp_path: Path, recorder: Recorder
) -> None:
    (tmp_path / "root" / "etc").mkdir(parents=True)
    with pytest.raises(LabError, match="no usr/sbin/asterisk"):
        chroot.ensure_chroot(tmp_path / "root")
    assert recorder.calls == []
