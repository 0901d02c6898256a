"""The mailbox reader against a real Dovecot fed by a real Postfix: every mail reaches the
core once, in order, across restarts, redeliveries, UIDVALIDITY changes and outages."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from mailtools import citizen_mail, eventually, mailbox_count, reader_settings, submit
from memory_sink import MemorySink

from channels.email.checkpoint import FileCheckpoint, MailCheckpoint, MemoryCheckpoint
from channels.email.reader import MailReader
from channels.email.settings import EmailChannelSettings
from lab.mail import MailLab

SAMPLES = Path(__file__).resolve().parent.parent / "mail_samples"


@contextlib.asynccontextmanager
async def running(reader: MailReader) -> AsyncIterator[MailReader]:
    """The reader running in a task owned by a TaskGroup, cancelled on exit."""
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(reader.run())
        try:
            yield reader
        finally:
            task.cancel()


def new_reader(
    lab: MailLab,
    sink: MemorySink,
    checkpoint: MailCheckpoint | None = None,
    settings: EmailChannelSettings | None = None,
) -> MailReader:
    return MailReader(
        settings or reader_settings(lab),
        sink,
        checkpoint or MemoryCheckpoint(),
        min_backoff_s=0.2,
        max_backoff_s=1.0,
    )


def uids(sink: MemorySink) -> list[int]:
    return [int(m.meta["imap_uid"]) for m in sink.calls]


async def test_given_50_mails_then_50_messages_each_handed_once_in_order(
    mail_lab: MailLab,
) -> None:
    sink = MemorySink()
    async with running(new_reader(mail_lab, sink)) as reader:
        await submit(mail_lab, [citizen_mail(n) for n in range(50)])
        await eventually(lambda: len(sink.stored) == 50, what="50 mails stored")
        # a marker mail after them: once it is in, nothing else can still be on its way
        await submit(mail_lab, [citizen_mail(99, subject="marker")])
        await eventually(lambda: len(sink.by_subject("marker")) == 1, what="the marker")
    assert len(sink.calls) == 51 and len(sink.stored) == 51
    assert uids(sink) == sorted(uids(sink))
    subjects = {m.subject for m in sink.stored.values()}
    assert {f"Phản ánh số {n}" for n in range(50)} <= subjects
    first = sink.by_subject("Phản ánh số 0")[0]
    assert first.sender.value == "congdan@lab.test" and first.sender_name == "Công Dân"
    assert first.text.strip() == "Nội dung phản ánh số 0: đường ở thôn 0 bị hỏng."
    assert reader.stats.handed == 51
    assert reader.settings.idle  # the lab's Dovecot has IDLE: the reader waited in IDLE


async def test_given_the_reader_stopped_while_10_mails_arrive_then_it_reads_those_10(
    mail_lab: MailLab, tmp_path: Path
) -> None:
    sink = MemorySink()
    checkpoint = FileCheckpoint(tmp_path / "mail-checkpoint.json")
    async with running(new_reader(mail_lab, sink, checkpoint)):
        await submit(mail_lab, [citizen_mail(n) for n in range(5)])
        await eventually(lambda: len(sink.stored) == 5, what="5 mails before the stop")
    # the engine is down: 10 mails arrive meanwhile
    await submit(mail_lab, [citizen_mail(n) for n in range(5, 15)])
    await eventually(lambda: mailbox_count(mail_lab, mail_lab.province) == 15, what="delivery")
    assert len(sink.calls) == 5
    restarted = new_reader(mail_lab, sink, FileCheckpoint(tmp_path / "mail-checkpoint.json"))
    async with running(restarted):
        await eventually(lambda: len(sink.stored) == 15, what="the 10 mails after restart")
        await submit(mail_lab, [citizen_mail(99, subject="marker")])
        await eventually(lambda: len(sink.by_subject("marker")) == 1, what="the marker")
    # Postfix delivers in parallel: the mailbox order (UIDs) is not the sending order
    after_restart = sorted(m.subject or "" for m in sink.calls[5:])
    assert after_restart == sorted([f"Phản ánh số {n}" for n in range(5, 15)] + ["marker"])
    assert uids(sink) == sorted(uids(sink))
    assert restarted.stats.handed == 11


async def test_given_a_mail_delivered_twice_then_stored_once(mail_lab: MailLab) -> None:
    sink = MemorySink()
    twice = citizen_mail(1, subject="gửi hai lần").as_bytes()
    async with running(new_reader(mail_lab, sink)):
        await submit(mail_lab, [twice, twice])
        await submit(mail_lab, [citizen_mail(99, subject="marker")])
        await eventually(lambda: len(sink.by_subject("marker")) == 1, what="the marker")
    handed = [m for m in sink.calls if m.subject == "gửi hai lần"]
    assert len(handed) == 2  # two UIDs on the server, the same Message-ID
    assert handed[0].external_id == handed[1].external_id
    assert len(sink.by_subject("gửi hai lần")) == 1


async def test_given_uidvalidity_changes_then_the_folder_is_read_again_without_duplicates(
    mail_lab: MailLab,
) -> None:
    sink = MemorySink()
    checkpoint = MemoryCheckpoint()
    reader = new_reader(mail_lab, sink, checkpoint)
    async with running(reader):
        await submit(mail_lab, [citizen_mail(n) for n in range(3)])
        await eventually(lambda: len(sink.stored) == 3, what="3 mails")
        old = checkpoint.positions[reader.key]
        mail_lab.set_uidvalidity(mail_lab.province, old.uidvalidity + 1000)
        await submit(mail_lab, [citizen_mail(3, subject="after the change")])
        await eventually(lambda: len(sink.calls) == 7, what="the folder read again")
    assert len(sink.stored) == 4  # 3 + 1 new: the re-read 3 were duplicates
    assert sorted(m.subject or "" for m in sink.calls[3:]) == sorted(
        ["Phản ánh số 0", "Phản ánh số 1", "Phản ánh số 2", "after the change"]
    )
    position = checkpoint.positions[reader.key]
    assert position.uidvalidity == old.uidvalidity + 1000


async def test_given_machine_mail_then_it_is_marked_automated(mail_lab: MailLab) -> None:
    sink = MemorySink()
    raws = [(SAMPLES / n).read_bytes() for n in ("autoreply.eml", "mailing_list.eml")]
    async with running(new_reader(mail_lab, sink)):
        await submit(mail_lab, [*raws, citizen_mail(1, subject="một người viết")])
        await eventually(lambda: len(sink.stored) == 3, what="3 mails")
    automated = {m.subject: m.automated for m in sink.stored.values()}
    assert automated == {
        "Trả lời tự động: Vắng mặt": True,
        "Ban tin tuan": True,
        "một người viết": False,
    }


async def test_given_a_real_bounce_from_postfix_then_it_is_automated(mail_lab: MailLab) -> None:
    """The province writes to an address Postfix accepts but the mailbox server refuses:
    Postfix returns a delivery report from MAILER-DAEMON with an empty return path."""
    sink = MemorySink()
    async with running(new_reader(mail_lab, sink)):
        lost = citizen_mail(1, subject="thư sẽ bị trả lại")
        await submit(mail_lab, [lost], user=mail_lab.province, to=mail_lab.bounce_address)
        await eventually(lambda: len(sink.stored) == 1, what="the bounce", timeout=60)
    (bounce,) = sink.stored.values()
    assert bounce.automated is True
    assert bounce.sender.value == "mailer-daemon@lab.test"
    assert bounce.meta["automated"]  # Postfix marks it Auto-Submitted, with Return-Path <>
    assert any(a.content_type == "message/delivery-status" for a in bounce.attachments)


async def test_given_an_outage_and_a_failing_core_then_the_reader_recovers(
    mail_lab: MailLab,
) -> None:
    sink = MemorySink()
    async with running(new_reader(mail_lab, sink)) as reader:
        await eventually(lambda: reader.stats.connected, what="connected")
        await asyncio.to_thread(mail_lab.stop_imap)
        await eventually(lambda: reader.stats.failures >= 2, what="failed reconnects")
        assert "cannot connect" in (reader.stats.last_error or "")
        await asyncio.to_thread(mail_lab.start_imap)
        # the core is away for the first two attempts: the mail comes again, nothing skipped
        sink.fail_next = 2
        await submit(mail_lab, [citizen_mail(n) for n in range(3)])
        await eventually(lambda: len(sink.stored) == 3, what="3 mails after the outage")
    assert len(sink.calls) == 3 and uids(sink) == sorted(uids(sink))


async def test_given_imaps_then_the_reader_verifies_the_certificate(mail_lab: MailLab) -> None:
    sink = MemorySink()
    settings = reader_settings(mail_lab, imap_url=mail_lab.imap_url(tls=True))
    async with running(new_reader(mail_lab, sink, settings=settings)):
        await submit(mail_lab, [citizen_mail(1, subject="qua TLS")])
        await eventually(lambda: len(sink.by_subject("qua TLS")) == 1, what="mail over TLS")
    untrusted = reader_settings(mail_lab, imap_url=f"imaps://127.0.0.1:{mail_lab.ports.imaps}")
    refused = new_reader(mail_lab, MemorySink(), settings=untrusted)
    async with running(refused):
        await eventually(lambda: refused.stats.failures >= 1, what="a refused certificate")
    assert "CERTIFICATE_VERIFY_FAILED" in (refused.stats.last_error or "")


async def test_given_polling_instead_of_idle_then_mail_still_arrives(mail_lab: MailLab) -> None:
    sink = MemorySink()
    settings = reader_settings(mail_lab, idle=False, poll_s=0.3)
    async with running(new_reader(mail_lab, sink, settings=settings)):
        await submit(mail_lab, [citizen_mail(n) for n in range(3)])
        await eventually(lambda: len(sink.stored) == 3, what="3 mails by polling")
