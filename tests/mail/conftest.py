"""The mail tests' servers: one private Dovecot + Postfix per test session (``lab/mail.py``),
on free loopback ports under a folder in /tmp, stopped at the end. Each test starts with
empty mailboxes (expunged; UIDs keep growing, as on a real server)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.mail import MailLab, start_mail
from lab.procs import LabError


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(here):
            item.add_marker(pytest.mark.mail)


@pytest.fixture(scope="session")
def mail_lab_session() -> Iterator[MailLab]:
    folder = Path(tempfile.mkdtemp(prefix="tongdai-mail-", dir="/tmp"))
    try:
        lab = start_mail(folder)
    except LabError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"the mail lab did not start: {exc}")
    try:
        yield lab
    finally:
        lab.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def mail_lab(mail_lab_session: MailLab) -> MailLab:
    """The session's servers, with both INBOXes emptied for this test."""
    lab = mail_lab_session
    if not (lab.dir / "dovecot.pid").exists():
        lab.start_imap()  # a test stopped it and failed before starting it again
    for user in (lab.province, lab.citizen):
        lab.doveadm("expunge", "-u", user.address, "mailbox", "INBOX", "all")
    return lab
