"""The demo's mails and chats (``scripts/demo.sh``): citizens write to 1022 through the lab's
mail server and open web chats; simulated agents answer them from the console's API.

    python -m lab.demo_messages prepare BASE.toml OUT_DIR   start the mail server (Dovecot +
                                                             Postfix, ``lab.mail``, files in
                                                             /tmp/tongdai-demo-mail-N) and write
                                                             OUT_DIR/tongdai.toml: BASE plus
                                                             [channels.email] and [channels.webchat]
    python -m lab.demo_messages run OUT_DIR                 mails and chats against the running
                                                             lab, agents answering; prints them
    python -m lab.demo_messages stop OUT_DIR                stop the mail server

``run``: ``--mails`` citizens' mails are submitted over SMTP (STARTTLS, AUTH) as
``congdan@lab.test`` to the province's mailbox ``1022@lab.test``, which the engine reads over
IMAP; ``--chats`` visitors open the portal's chat WebSocket, ask, and ask for an agent. The
simulated agents are web API clients, one per agent the ACD gives a conversation to (an API
token of a lab account named after the agent; made if missing): each answers its
conversation (``POST /api/conversations/{code}/messages``) and resolves it
(``POST /api/conversations/{code}/resolve``). Checked: every mail became a ticket, was
acknowledged, and its answer reached the citizen's mailbox threaded under the citizen's mail
(``In-Reply-To``); every chat got its ticket code and saw the agent's answer on its socket.
Exit status 1 when something was missing (the lines say what).
"""

from __future__ import annotations

import argparse
import asyncio
import email
import imaplib
import json
import re
import secrets
import smtplib
import ssl
import sys
import time
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import make_msgid
from pathlib import Path

import httpx
import websockets

from accounts.model import Role
from accounts.store import AuthStore
from lab.mail import MailLab, MailPorts, MailUser, start_mail
from tickets.sql import SqlTicketStore
from tickets.sql_conversations import SqlConversationStore
from tongdai.db import make_engine, upgrade_engine
from tongdai.settings import Settings, load_settings

CODE_RE = re.compile(r"1022-\d{8}-\d{6}")
#: how long the whole exchange may take before what is missing is reported
DEADLINE_S = 120.0
IO_TIMEOUT_S = 20.0
MAILS = [
    ("Hỏi thủ tục cấp lại giấy khai sinh", "Kính gửi Tổng đài 1022,\nTôi muốn hỏi thủ tục "
     "cấp lại giấy khai sinh cho con tôi cần những giấy tờ gì?\nXin cảm ơn."),
    ("Phản ánh đường ở thôn 3 bị sạt lở", "Đường liên thôn ở thôn 3, xã Tam Thăng bị sạt lở "
     "sau mưa lớn, đề nghị cơ quan chức năng kiểm tra."),
    ("Đăng ký nhận kết quả qua bưu điện", "Tôi muốn đăng ký nhận kết quả hồ sơ qua bưu điện, "
     "xin hướng dẫn."),
]  # fmt: skip
CHATS = [
    "Cho tôi hỏi giờ làm việc của bộ phận một cửa tỉnh",
    "Tôi cần hỏi về thủ tục đăng ký kinh doanh hộ cá thể",
    "Xin hướng dẫn nộp hồ sơ trực tuyến trên cổng dịch vụ công",
]
ANSWER = "Kính gửi ông/bà, Tổng đài 1022 xin trả lời: {topic}. Xin cảm ơn ông/bà đã liên hệ."
ANSWER_START = ANSWER.split("{", 1)[0]


# -- the mail server -----------------------------------------------------------------------


def _lab_file(out: Path) -> Path:
    return out / "mail-lab.json"


def _save(lab: MailLab, out: Path) -> None:
    doc = {
        "dir": str(lab.dir),
        "ports": asdict(lab.ports),
        "province": {**asdict(lab.province), "password_file": str(lab.province.password_file)},
        "citizen": {**asdict(lab.citizen), "password_file": str(lab.citizen.password_file)},
        "cafile": str(lab.cafile),
    }
    _lab_file(out).write_text(json.dumps(doc), encoding="utf-8")
    _lab_file(out).chmod(0o600)  # it holds the lab mailboxes' passwords


def _load(out: Path) -> MailLab:
    doc = json.loads(_lab_file(out).read_text(encoding="utf-8"))

    def user(d: dict[str, str]) -> MailUser:
        return MailUser(d["address"], d["password"], Path(d["password_file"]))

    return MailLab(
        Path(doc["dir"]), MailPorts(**doc["ports"]), user(doc["province"]), user(doc["citizen"]),
        Path(doc["cafile"]),
    )  # fmt: skip


def prepare(base: Path, out: Path) -> Path:
    """Start the mail server under ``out/mail`` and write ``out/tongdai.toml``."""
    out.mkdir(parents=True, exist_ok=True)
    if _lab_file(out).exists():  # a previous run that did not stop it
        stop(out)
    settings = load_settings(base)
    # under /tmp: Dovecot's and Postfix's users must reach it (a clone under /root is 0700)
    lab = start_mail(Path(f"/tmp/tongdai-demo-mail-{settings.lab.instance}"))
    _save(lab, out)
    origin = f"http://{settings.web.host}:{settings.web.port}"
    text = settings_text(base.read_text(encoding="utf-8"), lab, origin)
    path = out / "tongdai.toml"
    path.write_text(text, encoding="utf-8")
    return path


def settings_text(base: str, lab: MailLab, origin: str) -> str:
    """``base`` (a tongdai.toml without [channels]) plus the lab's mail and the chat."""
    return (
        f"{base}\n# added by lab.demo_messages: the lab's mail server and the portal's chat\n"
        f"{lab.email_channel_toml(poll_s=1.0)}\n"
        f"[channels.webchat]\nallowed_origins = [{json.dumps(origin)}]\n"
    )


def stop(out: Path) -> None:
    if _lab_file(out).exists():
        _load(out).stop()
        _lab_file(out).unlink()


# -- the citizens --------------------------------------------------------------------------


def _submit(lab: MailLab, mails: list[EmailMessage]) -> None:
    context = ssl.create_default_context(cafile=str(lab.cafile))
    with smtplib.SMTP(lab.host, lab.ports.smtp, timeout=IO_TIMEOUT_S) as smtp:
        smtp.starttls(context=context)
        smtp.login(lab.citizen.address, lab.citizen.password)
        for m in mails:
            smtp.send_message(m)


def _mailbox(lab: MailLab) -> list[EmailMessage]:
    """The citizen's inbox, every mail parsed."""
    with imaplib.IMAP4(lab.host, lab.ports.imap, timeout=IO_TIMEOUT_S) as imap:
        imap.login(lab.citizen.address, lab.citizen.password)
        imap.select("INBOX", readonly=True)
        _, found = imap.search(None, "ALL")
        mails: list[EmailMessage] = []
        for num in found[0].split():
            _, data = imap.fetch(num, "(RFC822)")
            raw = data[0]
            if isinstance(raw, tuple):
                parsed = email.message_from_bytes(raw[1], policy=default_policy)
                assert isinstance(parsed, EmailMessage)
                mails.append(parsed)
        return mails


@dataclass
class Chat:
    topic: str
    code: str | None = None
    answered_s: float | None = None
    texts: list[str] = field(default_factory=list)


async def _visitor(url: str, origin: str, chat: Chat, done: asyncio.Event) -> None:
    """Ask, ask for an agent, wait for the agent's answer (or ``done``: the run gives up)."""
    began = time.monotonic()
    async with websockets.connect(url, origin=origin, open_timeout=IO_TIMEOUT_S) as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"type": "hello", "token": None}))
        for n, text in enumerate((chat.topic, "Gặp tổng đài viên")):
            await ws.send(json.dumps({"type": "message", "cid": f"c{n}", "text": text}))
        while not done.is_set():
            try:
                async with asyncio.timeout(1.0):
                    e = json.loads(await ws.recv())
            except TimeoutError:
                continue
            if e.get("type") != "message" or e.get("dir") != "out":
                continue
            chat.texts.append(str(e.get("text", "")))
            found = CODE_RE.search(chat.texts[-1])
            if chat.code is None and found:
                chat.code = found.group(0)
            if chat.texts[-1].startswith(ANSWER_START):  # the agent's (the bot's is "staff" too)
                chat.answered_s = time.monotonic() - began
                return


# -- the agents ----------------------------------------------------------------------------


class Agents:
    """The console's API as the simulated agents use it (an API token each)."""

    def __init__(self, settings: Settings, base: str) -> None:
        self.settings = settings
        self.base = base
        self.tokens: dict[str, str] = {}
        self.done: set[str] = set()

    async def token(self, agent: str) -> str:
        if agent not in self.tokens:
            db = make_engine(self.settings.database.resolved_url())
            try:
                await upgrade_engine(db)
                store = AuthStore(db)
                if await store.get_user(agent) is None:  # a lab account for the demo agent
                    await store.add_user(
                        agent, Role.AGENT, secrets.token_urlsafe(16), agent_id=agent
                    )
                self.tokens[agent] = await store.new_token(agent, "demo")
            finally:
                await db.dispose()
        return self.tokens[agent]

    async def serve(
        self, client: httpx.AsyncClient, wanted: set[str], topic: dict[str, str]
    ) -> None:
        """Answer and resolve every conversation in ``wanted`` once the ACD gives it to an
        agent (the supervisor's list shows who holds what)."""
        sup = {"Authorization": f"Bearer {await self.token('giamsat')}"}
        lists = (await client.get("/api/conversations", headers=sup)).json()
        for row in [*lists["mine"], *lists["waiting"], *lists["others"]]:
            code, agent = row["code"], row["agent"]
            if code not in wanted or code in self.done or not agent:
                continue
            me = {"Authorization": f"Bearer {await self.token(agent)}"}
            text = ANSWER.format(topic=topic.get(code, "đã tiếp nhận yêu cầu"))
            r = await client.post(f"/api/conversations/{code}/messages", json={"text": text},
                                  headers=me)  # fmt: skip
            r.raise_for_status()
            r = await client.post(f"/api/conversations/{code}/resolve", json={"note": "demo"},
                                  headers=me)  # fmt: skip
            r.raise_for_status()
            self.done.add(code)
            print(f"  agent {agent} answered and resolved {code} ({row['channel']})")


async def run(out: Path, n_mails: int, n_chats: int) -> int:
    settings = load_settings(out / "tongdai.toml")
    lab = _load(out)
    base = f"http://{settings.web.host}:{settings.web.port}"
    agents = Agents(settings, base)
    await agents.token("giamsat")  # the supervisor's view: who holds which conversation
    sent: dict[str, tuple[str, str]] = {}  # Message-ID -> (subject, text)
    mails = []
    for subject, body in (MAILS * (n_mails // len(MAILS) + 1))[:n_mails]:
        m = EmailMessage()
        m["From"], m["To"] = lab.citizen.address, lab.province.address
        m["Subject"], m["Message-ID"] = subject, make_msgid(domain=lab.domain)
        m.set_content(body)
        mails.append(m)
        sent[str(m["Message-ID"]).strip("<>")] = (subject, body)
    began = time.monotonic()
    await asyncio.to_thread(_submit, lab, mails)
    print(f"{n_mails} mails submitted to {lab.province.address} (SMTP, STARTTLS)")

    chats = [Chat(t) for t in (CHATS * (n_chats // len(CHATS) + 1))[:n_chats]]
    stop_chats = asyncio.Event()
    ws_url = f"ws://{settings.web.host}:{settings.web.port}/chat/ws"
    visitors = [asyncio.create_task(_visitor(ws_url, base, c, stop_chats)) for c in chats]
    print(f"{n_chats} web chats opened on {ws_url}")

    async with httpx.AsyncClient(base_url=base, timeout=IO_TIMEOUT_S) as client:
        mail_codes: dict[str, str] = {}  # Message-ID -> ticket code
        deadline = began + DEADLINE_S
        while time.monotonic() < deadline:
            missing = [mid for mid in sent if mid not in mail_codes]
            if missing:
                mail_codes |= await _tickets_of_mails(settings, missing)
            wanted = set(mail_codes.values()) | {c.code for c in chats if c.code}
            topic = {code: sent[mid][0] for mid, code in mail_codes.items()}
            topic |= {c.code: c.topic for c in chats if c.code}
            await agents.serve(client, wanted, topic)
            if len(agents.done) == n_mails + n_chats and all(v.done() for v in visitors):
                break
            await asyncio.sleep(0.5)
        stop_chats.set()
        results = await asyncio.gather(*visitors, return_exceptions=True)

    # the citizen's mailbox: an acknowledgement and the agent's answer per mail, threaded
    replies: dict[str, EmailMessage] = {}
    acks: set[str] = set()
    while time.monotonic() < began + DEADLINE_S + 30:
        for got in await asyncio.to_thread(_mailbox, lab):
            parent = str(got["In-Reply-To"] or "").strip().strip("<>")
            if parent not in sent:
                continue
            if got["Auto-Submitted"]:
                acks.add(parent)
            else:
                replies[parent] = got
        if len(replies) == len(sent) and len(acks) == len(sent):
            break
        await asyncio.sleep(1.0)

    ok = True
    print("\nthe mails (citizen congdan@lab.test -> 1022@lab.test):")
    for mid, (subject, _) in sent.items():
        code = mail_codes.get(mid)
        line = f"  {code or 'NO TICKET':<22} {subject[:44]:<44}"
        line += " ack " + ("yes" if mid in acks else "MISSING")
        line += ", answer " + ("in the mailbox, In-Reply-To the citizen's mail"
                               if mid in replies else "MISSING")  # fmt: skip
        ok &= code is not None and mid in acks and mid in replies
        print(line)
    print("the web chats:")
    for c, res in zip(chats, results, strict=True):
        failed = isinstance(res, BaseException)
        seen = (
            f"agent's answer on the socket after {c.answered_s:.1f} s"
            if c.answered_s
            else (f"NO ANSWER ({type(res).__name__}: {res})" if failed else "NO ANSWER")
        )
        ok &= c.code is not None and c.answered_s is not None
        print(f"  {c.code or 'NO TICKET':<22} {c.topic[:44]:<44} {seen}")
    print(f"mails and chats: {'all answered' if ok else 'SOMETHING MISSING'} "
          f"in {time.monotonic() - began:.0f} s")  # fmt: skip
    return 0 if ok else 1


async def _tickets_of_mails(settings: Settings, mids: list[str]) -> dict[str, str]:
    """The tickets the mails became (Message-ID -> code), for those the engine has read."""
    db = make_engine(settings.database.resolved_url())
    try:
        conv = SqlConversationStore(SqlTicketStore(db))
        found = {mid: await conv.find_message("email", mid) for mid in mids}
    finally:
        await db.dispose()
    return {mid: m.ticket_code for mid, m in found.items() if m is not None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.demo_messages", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("prepare")
    pp.add_argument("base", type=Path)
    pp.add_argument("out", type=Path)
    pr = sub.add_parser("run")
    pr.add_argument("out", type=Path)
    pr.add_argument("--mails", type=int, default=3)
    pr.add_argument("--chats", type=int, default=3)
    ps = sub.add_parser("stop")
    ps.add_argument("out", type=Path)
    args = p.parse_args(argv)
    if args.cmd == "prepare":
        print(prepare(args.base, args.out))
        return 0
    if args.cmd == "stop":
        stop(args.out)
        return 0
    return asyncio.run(run(args.out, args.mails, args.chats))


if __name__ == "__main__":
    sys.exit(main())
