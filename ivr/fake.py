"""A scripted caller implementing ``AgiSession``, for fast unit tests of the menu logic.

Inputs are consumed one per read, in order:
- ``"5"``: the key 5 (``wait_for_digit``) or ``"12345#"`` (``get_data``, ended by ``#``);
- ``"~5"``: key 5 pressed *while a prompt plays* (barge-in: ``stream_file`` returns it);
- ``""``: silence (the read times out);
- ``"H"``: the caller hangs up while the engine waits for input (the next read raises
  ``AgiHangup``); ``"~H"``: hangs up while a prompt plays; ``"12H"`` (``get_data``): keys 1
  and 2, then hangs up before ``#`` (``AgiHangup``, as ``ivr.agi.AgiChannel`` raises it);
- ``"rec"``: the caller speaks during ``record_file`` and presses ``#`` (a file is written).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path

from tongdai.errors import AgiHangup


class FakeAgiSession:
    def __init__(
        self,
        inputs: Iterable[str],
        *,
        env: Mapping[str, str] | None = None,
        record_dir: Path | None = None,
    ) -> None:
        self.inputs: deque[str] = deque(inputs)
        self.env = dict(env or {"agi_callerid": "0905123456", "agi_uniqueid": "1700000000.1"})
        self.record_dir = record_dir
        self.played: list[str] = []
        self.variables: dict[str, str] = {}
        self.hung_up = False
        self.commands = 0

    def _check(self, hangup_token: str = "H") -> None:
        self.commands += 1
        if self.hung_up:
            raise AgiHangup("fake caller hung up")
        if self.inputs and self.inputs[0] == hangup_token:
            self.inputs.popleft()
            self.hung_up = True
            raise AgiHangup("fake caller hung up")

    def _next(self) -> str:
        return self.inputs.popleft() if self.inputs else ""

    @property
    def prompts(self) -> list[str]:
        """Names of the prompts played (folder stripped)."""
        return [p.rsplit("/", 1)[-1] for p in self.played]

    async def stream_file(self, path: str, escape: str = "0123456789*#") -> str | None:
        self._check("~H")
        self.played.append(path)
        if self.inputs and self.inputs[0].startswith("~") and self.inputs[0][1:2] in escape:
            key = self.inputs.popleft()[1:]
            return key or None
        return None

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        self._check()
        value = self._next().lstrip("~")
        return value[:1] or None

    async def get_data(self, path: str, timeout_ms: int, max_digits: int) -> tuple[str, bool]:
        self._check()
        self.played.append(path)
        value = self._next().lstrip("~")
        if value.endswith("H"):  # keyed part of a code, then hung up while keying
            self.hung_up = True
            raise AgiHangup("fake caller hung up while keying")
        if "#" in value:
            digits = value.split("#", 1)[0]
            return digits[:max_digits], False
        return value[:max_digits], len(value) < max_digits

    async def record_file(
        self, path: str, fmt: str, escape: str, timeout_ms: int, silence_s: int
    ) -> str | None:
        self._check()
        value = self._next()
        if value in ("rec", "recH") and self.record_dir is not None:
            name = path.rsplit("/", 1)[-1]
            (self.record_dir / f"{name}.{fmt}").write_bytes(b"RIFF" + b"\0" * 2000)
        if value == "recH":
            self.hung_up = True
            raise AgiHangup("fake caller hung up while recording")
        return "#" if value == "rec" else None

    async def set_variable(self, name: str, value: str) -> None:
        self._check("~H")
        self.variables[name] = value

    async def get_variable(self, name: str) -> str | None:
        self._check("~H")
        return self.variables.get(name)

    async def hangup(self) -> None:
        self.hung_up = True

    async def verbose(self, message: str) -> None:
        self._check("~H")
