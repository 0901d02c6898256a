"""The agencies file (``agencies/agencies_quangnam.toml``): who a ticket may be forwarded to.

Each ``[agencies.<id>]`` table names one agency: Vietnamese ``name``, contact ``email`` (the
forward notification goes there), the ``categories`` it usually takes (the console suggests
it for those) and ``deadline_days``, its answer deadline in working days. Read through
``tongdai.config_file``: a broken file is a ``ConfigError`` naming the file and the field
(``agencies_quangnam.toml: agencies.so_tu_phap.deadline_days: must be between 1 and 60``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tongdai.config_file import Fields, read_toml
from tongdai.errors import ConfigError

HERE = Path(__file__).resolve().parent
DEFAULT_FILE = HERE / "agencies_quangnam.toml"
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_]{1,31}$")
EMAIL_RE = re.compile(r"^[^@\s<>,;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,}$")
CATEGORY_RE = re.compile(r"^[a-z0-9_]{1,64}$")
FIELDS = ("name", "email", "categories", "deadline_days")


@dataclass(frozen=True)
class Agency:
    id: str
    name: str
    email: str
    categories: tuple[str, ...]
    deadline_days: int


class AgencyBook:
    """The agencies of one file, in the file's order."""

    def __init__(self, agencies: list[Agency], source: str = "-") -> None:
        self.source = source
        self._by_id = {a.id: a for a in agencies}

    def __iter__(self) -> Iterator[Agency]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, agency_id: object) -> bool:
        return agency_id in self._by_id

    def get(self, agency_id: str | None) -> Agency | None:
        return self._by_id.get(agency_id) if agency_id else None

    def name(self, agency_id: str | None) -> str:
        """The Vietnamese name, or the id itself for an agency no longer in the file."""
        found = self.get(agency_id)
        return found.name if found else (agency_id or "")

    def for_category(self, category: str | None) -> list[Agency]:
        """The agencies that usually take ``category`` (the console's suggestions)."""
        return [a for a in self if category in a.categories]


def load_agencies(path: str | Path = DEFAULT_FILE) -> AgencyBook:
    file = str(path)
    raw = read_toml(path)
    top = Fields(file, "", raw, allowed=("agencies",))
    table = top.table("agencies")
    if not table:
        raise ConfigError(file, "agencies", "no agency: add at least one [agencies.<id>] table")
    out: list[Agency] = []
    emails: dict[str, str] = {}
    for agency_id in table:
        if not ID_RE.match(agency_id):
            raise top.err(f"agencies.{agency_id}", "id: use 2-32 of a-z 0-9 _")
        f = top.sub("agencies").sub(agency_id, allowed=FIELDS)
        if "deadline_days" not in f.raw:
            raise f.err("deadline_days", "required: the answer deadline in working days")
        email = f.text("email")
        if not EMAIL_RE.match(email):
            raise f.err("email", f"not an e-mail address: {email!r}")
        if email.lower() in emails:
            raise f.err("email", f"also the address of {emails[email.lower()]}")
        emails[email.lower()] = agency_id
        out.append(
            Agency(
                id=agency_id,
                name=f.text("name"),
                email=email,
                categories=f.text_list("categories", CATEGORY_RE, "category ids (a-z 0-9 _)"),
                deadline_days=f.whole("deadline_days", 0, 1, 60),
            )
        )
    return AgencyBook(out, file)
