"""A mailbox of 10,000 old mails is read once, completely, in order, and fast enough; the
rate is printed (JSON) for the README."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mailtools import mailbox_count, old_mail, reader_settings
from memory_sink import MemorySink

from channels.email.checkpoint import FileCheckpoint
from channels.email.reader import MailReader
from lab.mail import MailLab

OLD_MAILS = 10_000


async def test_given_10000_old_mails_then_all_read_once_in_order(
    mail_lab: MailLab, tmp_path: Path
) -> None:
    raws = [old_mail(n) for n in range(OLD_MAILS)]
    mail_lab.deliver_maildir(mail_lab.province, raws)
    assert mailbox_count(mail_lab, mail_lab.province) == OLD_MAILS
    sink = MemorySink()
    checkpoint = FileCheckpoint(tmp_path / "mail-checkpoint.json")
    reader = MailReader(reader_settings(mail_lab, batch=100), sink, checkpoint)
    started = time.perf_counter()
    handed = await reader.sync_once()
    seconds = time.perf_counter() - started
    assert handed == OLD_MAILS
    assert len(sink.stored) == OLD_MAILS and len(sink.calls) == OLD_MAILS
    uids = [int(m.meta["imap_uid"]) for m in sink.calls]
    assert uids == sorted(uids) and len(set(uids)) == OLD_MAILS
    assert {m.subject for m in sink.calls} == {f"Thư cũ {n}" for n in range(OLD_MAILS)}
    # nothing left, nothing twice: a second pass (a restart) hands nothing
    again = MailReader(reader_settings(mail_lab), sink, FileCheckpoint(checkpoint.path))
    assert await again.sync_once() == 0
    print(
        json.dumps(
            {
                "bench": "email_backfill",
                "mails": OLD_MAILS,
                "seconds": round(seconds, 2),
                "mails_per_s": round(OLD_MAILS / seconds, 1),
                "checkpoint": "file, fsync per mail",
                "batch": 100,
            }
        )
    )
