"""The lab's AMI probe against a scripted fake AMI server (one thread, loopback)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from lab.ami_ready import AmiLoginRefused, AmiProbe, fully_booted
from tongdai.errors import AmiError

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
Script = Callable[[socket.socket], None]


def _read_action(conn: socket.socket) -> dict[str, str]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return {}
        data += chunk
    lines = data.split(b"\r\n\r\n")[0].decode().split("\r\n")
    return dict(line.split(": ", 1) for line in lines)


class FakeAmi:
    """Accepts one connection and runs ``script`` on it."""

    def __init__(self, script: Script) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self.script = script
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.server.settimeout(5.0)
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        with conn:
            self.script(conn)

    def close(self) -> None:
        self.server.close()
        self.thread.join(timeout=5.0)


@pytest.fixture
def fake_ami() -> Iterator[Callable[[Script], FakeAmi]]:
    started: list[FakeAmi] = []

    def start(script: Script) -> FakeAmi:
        started.append(FakeAmi(script))
        return started[-1]

    yield start
    for fake in started:
        fake.close()


def _booting_asterisk(secret: str, booted: bool = True) -> Script:
    def script(conn: socket.socket) -> None:
        conn.sendall(BANNER)
        action = _read_action(conn)
        aid = action.get("ActionID", "")
        if action.get("Secret") != secret:
            refused = f"Response: Error\r\nActionID: {aid}\r\nMessage: Authentication failed\r\n"
            conn.sendall(refused.encode() + b"\r\n")
            return
        conn.sendall(f"Response: Success\r\nActionID: {aid}\r\nMessage: ok\r\n\r\n".encode())
        if booted:
            conn.sendall(b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Ready\r\n\r\n")
        command = _read_action(conn)
        if command.get("Action") == "Command":
            conn.sendall(
                (
                    f"Event: Noise\r\n\r\nResponse: Success\r\nActionID: {command['ActionID']}\r\n"
                    "Message: Command output follows\r\n"
                    "Output: Asterisk 22.10.1\r\nOutput: second line\r\n\r\n"
                ).encode()
            )

    return script


def test_given_a_booted_asterisk_when_probed_then_fully_booted(
    fake_ami: Callable[[Script], FakeAmi],
) -> None:
    fake = fake_ami(_booting_asterisk("good"))
    assert fully_booted("127.0.0.1", fake.port, "tongdai", "good", timeout=3.0) is True


def test_given_a_wrong_secret_when_probed_then_login_refused_at_once(
    fake_ami: Callable[[Script], FakeAmi],
) -> None:
    fake = fake_ami(_booting_asterisk("good"))
    started = time.monotonic()
    with pytest.raises(AmiLoginRefused, match="Authentication failed"):
        fully_booted("127.0.0.1", fake.port, "tongdai", "bad", timeout=3.0)
    assert time.monotonic() - started < 2.0


def test_given_asterisk_still_booting_when_probed_then_false_after_timeout(
    fake_ami: Callable[[Script], FakeAmi],
) -> None:
    fake = fake_ami(_booting_asterisk("good", booted=False))
    started = time.monotonic()
    assert fully_booted("127.0.0.1", fake.port, "tongdai", "good", timeout=0.5) is False
    assert time.monotonic() - started < 2.0


def test_given_nothing_listening_when_probed_then_false() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    assert fully_booted("127.0.0.1", port, "tongdai", "x", timeout=1.0) is False


def test_given_a_silent_server_when_probed_then_false_within_the_timeout(
    fake_ami: Callable[[Script], FakeAmi],
) -> None:
    def silent(conn: socket.socket) -> None:
        conn.recv(1)  # returns when the probe gives up and closes

    fake = fake_ami(silent)
    started = time.monotonic()
    assert fully_booted("127.0.0.1", fake.port, "tongdai", "x", timeout=0.5) is False
    assert time.monotonic() - started < 1.5


def test_given_a_non_ami_server_when_connecting_then_ami_error(
    fake_ami: Callable[[Script], FakeAmi],
) -> None:
    def ssh(conn: socket.socket) -> None:
        conn.sendall(b"SSH-2.0-OpenSSH\r\n")

    fake = fake_ami(ssh)
    with pytest.raises(AmiError, match="not AMI"), AmiProbe("127.0.0.1", fake.port, 2.0):
        pass


def test_given_a_command_when_run_then_output_lines_skip_events(
    fake_ami: Callable[[Script], FakeAmi],
) -> None:
    fake = fake_ami(_booting_asterisk("good"))
    with AmiProbe("127.0.0.1", fake.port, 3.0) as ami:
        ami.login("tongdai", "good")
        assert ami.command("core show version") == "Asterisk 22.10.1\nsecond line"
