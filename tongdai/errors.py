"""Errors shared by every domain.

TongdaiError                 base: a message a person can act on
├── ConfigError              a file the province edits is wrong (names file and field)
├── StoreError               the ticket/dossier store failed (database away, ...)
└── TelephonyError           Asterisk side: AGI/AMI protocol or connection problems
    ├── AgiHangup            the caller hung up (raised inside a call's task)
    └── AmiError             an AMI action failed or timed out
"""

from __future__ import annotations


class TongdaiError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(TongdaiError):
    """A configuration file is invalid. ``str()`` reads ``FILE: FIELD: problem``."""

    def __init__(self, file: str, field: str, problem: str) -> None:
        self.file = file
        self.field = field
        self.problem = problem
        super().__init__(f"{file}: {field}: {problem}")


class StoreError(TongdaiError):
    """The persistent store could not do what was asked."""


class TelephonyError(TongdaiError):
    """Something went wrong talking to Asterisk."""


class AgiHangup(TelephonyError):
    """The channel hung up; the call's logic must stop and record how far it got."""


class AmiError(TelephonyError):
    """An AMI action failed, timed out, or the connection is down."""
