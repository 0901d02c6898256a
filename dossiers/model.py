"""Dossier (hồ sơ) look-up: the types and the interface the IVR calls.

The default implementation reads a local table filled by ``tongdai dossiers import``; the
provincial portal's API would plug in behind the same ``DossierLookup`` interface.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Protocol

#: what a caller can key for a dossier: digits only, 4 to 16 of them
CODE_RE = re.compile(r"^[0-9]{4,16}$")
MAX_CODE_DIGITS = 16


class DossierStatus(StrEnum):
    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    RESULT_READY = "result_ready"
    RETURNED = "returned"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Dossier:
    code: str
    procedure: str
    agency: str
    status: DossierStatus
    received_date: date
    due_date: date | None

    def is_overdue(self, today: date) -> bool:
        """Overdue: past its due date while still being handled."""
        return (
            self.due_date is not None
            and self.due_date < today
            and self.status in (DossierStatus.RECEIVED, DossierStatus.IN_PROGRESS)
        )


class DossierLookup(Protocol):
    async def find(self, code: str) -> Dossier | None:
        """The dossier with this (well-formed) code, or None."""
