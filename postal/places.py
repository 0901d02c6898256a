"""The places a delivery address is picked from: one province, its districts and their wards
(``places_quangnam.toml``, a file the province edits). Read through ``tongdai.config_file``:
a broken file is a ``ConfigError`` naming the file and the field
(``places_quangnam.toml: districts.tam_ky.wards: must be a list of ward names``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tongdai.config_file import Fields, read_toml
from tongdai.errors import ConfigError

HERE = Path(__file__).resolve().parent
DEFAULT_FILE = HERE / "places_quangnam.toml"
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_]{1,31}$")
#: a ward's name: letters (any script), digits, spaces and a few signs, 2-80 characters
NAME_RE = re.compile(r"^[^\x00-\x1f\x7f<>\"]{2,80}$")


@dataclass(frozen=True)
class District:
    id: str
    name: str
    wards: tuple[str, ...]


@dataclass(frozen=True)
class PlaceBook:
    """One province's districts, in the file's order."""

    province_id: str
    province: str
    districts: tuple[District, ...]
    source: str = "-"

    def __iter__(self) -> Iterator[District]:
        return iter(self.districts)

    def district(self, district_id: str | None) -> District | None:
        return next((d for d in self.districts if d.id == district_id), None)


def load_places(path: str | Path = DEFAULT_FILE) -> PlaceBook:
    file = str(path)
    top = Fields(file, "", read_toml(path), allowed=("province", "districts"))
    prov = top.sub("province", allowed=("id", "name"))
    province_id = prov.text("id")
    if not ID_RE.match(province_id):
        raise prov.err("id", "use 2-32 of a-z 0-9 _")
    table = top.table("districts")
    if not table:
        raise ConfigError(file, "districts", "no district: add at least one [districts.<id>]")
    out: list[District] = []
    for district_id in table:
        if not ID_RE.match(district_id):
            raise top.err(f"districts.{district_id}", "id: use 2-32 of a-z 0-9 _")
        f = top.sub("districts").sub(district_id, allowed=("name", "wards"))
        wards = f.text_list("wards", NAME_RE, 'ward names (2-80 characters, no < > ")')
        if not wards:
            raise f.err("wards", "required: at least one ward or commune")
        if len(set(wards)) != len(wards):
            raise f.err("wards", "a ward is listed twice")
        out.append(District(district_id, f.text("name"), wards))
    return PlaceBook(province_id, prov.text("name"), tuple(out), file)
