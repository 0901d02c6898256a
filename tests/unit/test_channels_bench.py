"""``tongdai bench channels`` on a small scale: visitors over real WebSockets (a child
process), mails through the journal, agents answering through the Outbox; nothing lost."""

from __future__ import annotations

from pathlib import Path

from bench.channels_bench import chat_load, parse_bench_mail
from hotline.cli import build_parser
from tickets.model import Channel


async def test_a_small_load_loses_nothing_and_measures_both_ways(
    db_url: str, tmp_path: Path
) -> None:
    r = await chat_load(db_url, tmp_path, visitors=3, rounds=2, mails=4, agents=2)
    chat, mail = r["chat"], r["mail"]
    assert (chat["lost"], chat["messages_sent"], chat["answers_received"]) == (0, 6, 6)
    assert chat["citizen_messages_stored"] == 6 and chat["failed_visitors"] == []
    assert chat["visitor_to_agent_ms"]["n"] == 6 and chat["agent_to_visitor_ms"]["n"] == 6
    assert 0 < chat["visitor_to_agent_ms"]["p50"] <= chat["round_trip_ms"]["max"]
    assert (mail["stored"], mail["lost"]) == (4, 0)
    assert r["engine"]["cpu_s"] > 0 and r["engine"]["peak_rss_mb"] > 0


def test_the_command_is_registered_and_the_stand_in_mail_parser_reads_a_mail() -> None:
    args = build_parser().parse_args(["bench", "channels", "--visitors", "5", "--json"])
    assert (args.visitors, args.mails, args.with_acd) == (5, 1000, 0)
    (m,) = parse_bench_mail(
        b'{"from": "a@b.vn", "message_id": "<1@b>", "subject": "s", "text": "t"}'
    )
    assert (m.channel, m.external_id, m.sender.value) == (Channel.EMAIL, "<1@b>", "a@b.vn")
