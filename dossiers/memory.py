"""An in-memory ``DossierLookup`` for unit tests of the IVR."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dossiers.model import CODE_RE, Dossier


class MemoryDossierLookup:
    """Dossiers kept in a dict by code; accepts a mapping or an iterable of dossiers."""

    def __init__(self, dossiers: Mapping[str, Dossier] | Iterable[Dossier] = ()) -> None:
        items = dossiers.values() if isinstance(dossiers, Mapping) else dossiers
        self.dossiers: dict[str, Dossier] = {d.code: d for d in items}

    async def find(self, code: str) -> Dossier | None:
        if not CODE_RE.match(code):
            return None
        return self.dossiers.get(code)
