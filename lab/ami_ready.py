"""A tiny blocking AMI probe: log in, wait for ``FullyBooted``, run a CLI command.

Only what the lab needs to know Asterisk is up (and what the lab's tests check). The engine
uses the full asyncio client in ``pbx.ami``. Every read has a deadline.
"""

from __future__ import annotations

import socket
import time
from types import TracebackType

from tongdai.errors import AmiError

Message = dict[str, str]


class AmiLoginRefused(AmiError):
    """Asterisk answered but refused the username/secret: waiting longer will not help."""


class AmiProbe:
    """One AMI session over a plain socket; use as a context manager."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.banner = ""
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._action_id = 0

    def __enter__(self) -> AmiProbe:
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise AmiError(f"cannot connect to AMI {self.host}:{self.port}: {exc}") from exc
        try:
            self.banner = self._read_line(time.monotonic() + self.timeout)
            if not self.banner.startswith("Asterisk Call Manager"):
                raise AmiError(f"{self.host}:{self.port} is not AMI (banner {self.banner!r})")
        except AmiError:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _recv(self, deadline: float) -> None:
        if self._sock is None:
            raise AmiError("AMI connection is closed")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AmiError(f"AMI {self.host}:{self.port}: no answer in time")
        self._sock.settimeout(remaining)
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError:
            raise AmiError(f"AMI {self.host}:{self.port}: no answer in time") from None
        except OSError as exc:
            raise AmiError(f"AMI {self.host}:{self.port}: {exc}") from exc
        if not chunk:
            raise AmiError(f"AMI {self.host}:{self.port} closed the connection")
        self._buffer += chunk

    def _read_line(self, deadline: float) -> str:
        while b"\r\n" not in self._buffer:
            self._recv(deadline)
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line.decode("utf-8", errors="replace")

    def read_message(self, deadline: float) -> Message:
        """The next message (response or event) as a dict; repeated keys are joined by newlines."""
        while b"\r\n\r\n" not in self._buffer:
            self._recv(deadline)
        raw, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        message: Message = {}
        for line in raw.decode("utf-8", errors="replace").split("\r\n"):
            key, sep, value = line.partition(":")
            if not sep:
                continue
            key, value = key.strip(), value.strip()
            message[key] = f"{message[key]}\n{value}" if key in message else value
        return message

    def send(self, action: str, **fields: str) -> str:
        """Send an action; returns its ActionID."""
        if self._sock is None:
            raise AmiError("AMI connection is closed")
        self._action_id += 1
        action_id = f"lab-{self._action_id}"
        lines = [f"Action: {action}", f"ActionID: {action_id}"]
        lines += [f"{key}: {value}" for key, value in fields.items()]
        try:
            self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        except OSError as exc:
            raise AmiError(f"AMI {self.host}:{self.port}: {exc}") from exc
        return action_id

    def response(self, action_id: str, timeout: float | None = None) -> Message:
        """Wait for the response to ``action_id`` (events in between are skipped)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            message = self.read_message(deadline)
            if message.get("ActionID") == action_id and "Response" in message:
                return message

    def login(self, username: str, secret: str) -> None:
        """Log in with system events on (``FullyBooted`` follows a successful login)."""
        reply = self.response(self.send("Login", Username=username, Secret=secret, Events="system"))
        if reply.get("Response") != "Success":
            raise AmiLoginRefused(
                f"AMI login as {username!r} refused: {reply.get('Message', reply)}"
            )

    def wait_fully_booted(self, timeout: float) -> None:
        """Wait for the ``FullyBooted`` event Asterisk sends after login once it is ready."""
        deadline = time.monotonic() + timeout
        while self.read_message(deadline).get("Event") != "FullyBooted":
            pass

    def command(self, cli: str, timeout: float | None = None) -> str:
        """Run a CLI command through the AMI ``Command`` action; returns its output."""
        reply = self.response(self.send("Command", Command=cli), timeout)
        if reply.get("Response") != "Success":
            raise AmiError(f"AMI Command {cli!r} failed: {reply.get('Message', reply)}")
        return reply.get("Output", "")


def fully_booted(host: str, port: int, username: str, secret: str, timeout: float = 5.0) -> bool:
    """True if AMI accepts our login and Asterisk reports FullyBooted within ``timeout``.

    False while Asterisk is not up yet; ``AmiLoginRefused`` if it is up but refuses the secret.
    """
    try:
        with AmiProbe(host, port, timeout) as ami:
            ami.login(username, secret)
            ami.wait_fully_booted(timeout)
    except AmiLoginRefused:
        raise
    except AmiError:
        return False
    return True
