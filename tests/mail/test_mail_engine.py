"""The email channel inside the engine's real messaging stack (``hotline.messaging``), against
the private Dovecot + Postfix and a real database (SQLite, PostgreSQL): a citizen's mail becomes
a ticket with its message, the citizen gets the Vietnamese acknowledgement carrying the code, an
agent's reply arrives threaded, the citizen's answer joins the ticket, and restarts of the
engine (with or without its checkpoint) neither lose nor duplicate a mail or an acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from pathlib import Path

from mailtools import citizen_mail, eventually, fetch_all, mailbox_count, old_mail, submit
from sqlalchemy import Select, func, select

from channels.email.reader import MailReader
from hotline.messaging import Messaging, build_messaging
from lab.mail import MailLab
from tickets.messages import Author, Delivery, Direction, Message
from tickets.model import Channel
from tickets.sql_conversations import M
from tongdai.db import make_engine, upgrade_engine
from tongdai.settings import Settings, load_settings


def write_settings(lab: MailLab, tmp_path: Path, db_url: str) -> Settings:
    """A ``tongdai.toml`` as an operator writes it, with ``[channels.email]`` for the lab."""
    q = json.dumps  # a TOML basic string for plain paths and URLs
    path = tmp_path / "tongdai.toml"
    path.write_text(
        f"""
[database]
url = {q(db_url)}
state_dir = {q(str(tmp_path / "state"))}

[channels]
attachments_dir = {q(str(tmp_path / "files"))}

{lab.email_channel_toml(poll_s=0.5)}""",
        encoding="utf-8",
    )
    return load_settings(path)


@contextlib.asynccontextmanager
async def engine_running(settings: Settings) -> AsyncIterator[Messaging]:
    """The engine's messaging (as ``hotline.serve`` runs it) until the block ends: cancelled
    then, like a stopped engine."""
    engine = make_engine(settings.database.resolved_url())
    await upgrade_engine(engine)
    messaging = build_messaging(settings, engine)
    task = asyncio.create_task(messaging.run())
    try:
        yield messaging
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await engine.dispose()


async def stored(m: Messaging, message_id: str, what: str, timeout: float = 30.0) -> Message:
    """The stored message with this Message-ID, once the engine has it (fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while (got := await m.conversations.find_message(Channel.EMAIL, message_id)) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)
    return got


def reader_of(m: Messaging) -> MailReader:
    """The mailbox reader whose ``run`` is the messaging's task."""
    (task,) = m.tasks
    reader = getattr(task, "__self__", None)
    assert isinstance(reader, MailReader)
    return reader


def ids(mail: EmailMessage, header: str) -> list[str]:
    return [i.strip("<>") for i in str(mail[header] or "").split()]


async def test_given_the_engine_then_mail_becomes_tickets_acknowledged_answered_once(
    mail_lab: MailLab, tmp_path: Path, db_url: str
) -> None:
    settings = write_settings(mail_lab, tmp_path, db_url)
    citizen = mail_lab.citizen
    first = citizen_mail(1, subject="Đường ở thôn 3 bị sạt lở")
    first_id = str(first["Message-ID"]).strip("<>")

    async with engine_running(settings) as m:
        await submit(mail_lab, [first])
        msg = await stored(m, first_id, "the first mail stored")
        code = msg.ticket_code
        ticket = await m.tickets.get(code)
        assert ticket is not None and ticket.channel == "email"
        assert ticket.caller == citizen.address and ticket.subject == "Đường ở thôn 3 bị sạt lở"
        assert msg.direction is Direction.IN and "đường ở thôn 1 bị hỏng" in msg.body

        # the acknowledgement: Vietnamese, carrying the code, threaded under the mail, automatic
        await eventually(lambda: mailbox_count(mail_lab, citizen) == 1, what="acknowledgement")
        (ack,) = await asyncio.to_thread(fetch_all, mail_lab, citizen)
        assert ack["Subject"] == f"Re: Đường ở thôn 3 bị sạt lở [{code}]"
        assert ack["In-Reply-To"] == f"<{first_id}>"
        assert ack["Auto-Submitted"] == "auto-replied"
        text = ack.get_body(preferencelist=("plain",))
        assert text is not None
        body = text.get_content()
        assert f"Mã phiếu của ông/bà là: {code}" in body and "Công Dân" in body

        # an agent's reply through the Outbox arrives threaded
        reply = await m.outbox.reply(code, "Chúng tôi đã chuyển phản ánh cho UBND huyện.")
        await eventually(lambda: mailbox_count(mail_lab, citizen) == 2, what="the agent's reply")
        agent_mail = (await asyncio.to_thread(fetch_all, mail_lab, citizen))[1]
        assert agent_mail["Auto-Submitted"] is None
        assert agent_mail["Subject"] == f"Re: Đường ở thôn 3 bị sạt lở [{code}]"
        # In-Reply-To: the citizen's mail, not our acknowledgement (the newest message)
        assert ids(agent_mail, "In-Reply-To") == [first_id]
        assert ids(agent_mail, "References")[0] == first_id
        assert ids(ack, "Message-ID")[0] in ids(agent_mail, "References")
        sent = {x.id: x for x in await m.conversations.messages(code)}[reply.id]
        assert sent.delivery is Delivery.SENT
        assert sent.external_id == ids(agent_mail, "Message-ID")[0]

        # the citizen answers the agent: the answer joins the ticket, with no new acknowledgement
        answer = citizen_mail(2, subject=str(agent_mail["Subject"]))
        answer["In-Reply-To"] = str(agent_mail["Message-ID"])
        answer["References"] = f"{agent_mail['References']} {agent_mail['Message-ID']}"
        answer_id = str(answer["Message-ID"]).strip("<>")
        await submit(mail_lab, [answer])
        joined = await stored(m, answer_id, "the citizen's answer stored")
        assert joined.ticket_code == code
        # a mail that only carries the code in its subject joins too
        by_code = citizen_mail(3, subject=f"Bổ sung ảnh [{code}]")
        await submit(mail_lab, [by_code])
        hinted = await stored(m, str(by_code["Message-ID"]).strip("<>"), "the code-only mail")
        assert hinted.ticket_code == code
        # the agent's next reply answers the citizen's last mail; References keep the thread
        await m.outbox.reply(code, "Đã nhận ảnh bổ sung, xin cảm ơn.")
        await eventually(lambda: mailbox_count(mail_lab, citizen) == 3, what="the second reply")
        second = (await asyncio.to_thread(fetch_all, mail_lab, citizen))[2]
        assert ids(second, "In-Reply-To") == [str(by_code["Message-ID"]).strip("<>")]
        assert ids(second, "References") == [
            first_id, ids(ack, "Message-ID")[0], ids(agent_mail, "Message-ID")[0], answer_id,
            str(by_code["Message-ID"]).strip("<>"),
        ]  # fmt: skip
        outs = [x for x in await m.conversations.messages(code) if x.direction is Direction.OUT]
        assert [x.author for x in outs] == [Author.SYSTEM, Author.AGENT, Author.AGENT]

    # the engine stopped: 10 mails arrive (one of them an out-of-office auto-reply)
    later = [citizen_mail(10 + n) for n in range(9)]
    auto = citizen_mail(19, subject="Tự động trả lời: vắng mặt", Auto_Submitted="auto-replied")
    await submit(mail_lab, [*later, auto])
    await eventually(lambda: mailbox_count(mail_lab, mail_lab.province) == 13, what="10 mails")
    assert mailbox_count(mail_lab, citizen) == 3  # nobody answered them yet

    async def counts(m: Messaging) -> tuple[int, int, int]:
        """(tickets, inbound messages, outbound messages) of the citizen."""
        contact = await m.conversations.contact_for("email", citizen.address, None)
        tickets = await m.conversations.contact_tickets(contact.id)
        msgs = [x for t in tickets for x in await m.conversations.messages(t.code)]
        ins = sum(1 for x in msgs if x.direction is Direction.IN)
        return len(tickets), ins, len(msgs) - ins

    started = time.monotonic()
    async with engine_running(settings) as m:
        for mail in [*later, auto]:
            await stored(m, str(mail["Message-ID"]).strip("<>"), "a mail sent while stopped")
        picked_up = time.monotonic() - started
        # 9 acknowledgements (none for the auto-reply): the citizen's mailbox holds 3 + 9
        await eventually(lambda: mailbox_count(mail_lab, citizen) == 12, what="9 acks")
        assert await counts(m) == (11, 13, 12)
    auto_id = str(auto["Message-ID"]).strip("<>")
    acks = (await asyncio.to_thread(fetch_all, mail_lab, citizen))[3:]
    assert all(a["Auto-Submitted"] == "auto-replied" for a in acks)
    assert auto_id not in {i for a in acks for i in ids(a, "In-Reply-To")}

    # started again without its checkpoint (lost state folder): the whole folder is read again,
    # and nothing is stored or acknowledged twice
    (tmp_path / "state" / "email-checkpoint.json").unlink()
    marker = citizen_mail(99, subject="marker")
    await submit(mail_lab, [marker])
    async with engine_running(settings) as m:
        await stored(m, str(marker["Message-ID"]).strip("<>"), "the marker (read last)")
        await eventually(lambda: mailbox_count(mail_lab, citizen) == 13, what="marker's ack")
        assert await counts(m) == (12, 14, 13)
    print(f"\n10 mails sent while stopped: all stored {picked_up:.2f} s after the start")


#: mails of the engine back-fill: 1,000 in the normal run (a minute here);
#: ``TONGDAI_MAIL_BACKFILL=10000`` for the figure in the README
BACKFILL = int(os.environ.get("TONGDAI_MAIL_BACKFILL", "1000"))


async def test_given_a_mailbox_of_old_mail_then_the_engine_opens_their_tickets_answering_none(
    mail_lab: MailLab, tmp_path: Path, make_db_url: Callable[[str], str]
) -> None:
    """The first start on the province's mailbox full of last months' mail: every mail becomes
    a ticket with its message, once, and nobody gets an acknowledgement for months-old mail;
    a start without the checkpoint reads all again and stores nothing twice. Timed."""
    settings = write_settings(mail_lab, tmp_path, make_db_url("sqlite"))
    mail_lab.deliver_maildir(mail_lab.province, [old_mail(n) for n in range(BACKFILL)])
    assert mailbox_count(mail_lab, mail_lab.province) == BACKFILL
    count_in = select(func.count()).select_from(M).where(M.c.direction == "in")
    count_out = select(func.count()).select_from(M).where(M.c.direction == "out")
    count_tickets = select(func.count(func.distinct(M.c.ticket_id)))

    async def count(m: Messaging, query: Select[int]) -> int:
        async with m.tickets.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def until_all_read(m: Messaging, reads: int) -> float:
        started = time.monotonic()
        reader = reader_of(m)
        while reader.stats.handed < reads:
            limit = 60 + BACKFILL / 10  # at least 10 mails a second, whatever the load
            assert time.monotonic() - started < limit, f"back-fill stuck at {reader.stats.handed}"
            await asyncio.sleep(0.2)
        return time.monotonic() - started

    async with engine_running(settings) as m:
        seconds = await until_all_read(m, BACKFILL)
        assert await count(m, count_in) == BACKFILL
        assert await count(m, count_tickets) == BACKFILL
        assert await count(m, count_out) == 0
    (tmp_path / "state" / "email-checkpoint.json").unlink()
    async with engine_running(settings) as m:
        again = await until_all_read(m, BACKFILL)
        assert await count(m, count_in) == BACKFILL and await count(m, count_out) == 0
    assert mailbox_count(mail_lab, mail_lab.citizen) == 0
    print(
        "\n"
        + json.dumps(
            {
                "bench": "email_backfill_engine",
                "mails": BACKFILL,
                "database": "sqlite",
                "seconds": round(seconds, 1),
                "tickets_per_s": round(BACKFILL / seconds, 1),
                "reread_without_checkpoint_s": round(again, 1),
            }
        )
    )
