"""Is a mail written by a machine? Auto-replies, bounces and list mail must never be answered.

Answering an out-of-office reply with an acknowledgement that itself triggers another
out-of-office reply is the classic mail loop; answering a bounce or a newsletter is noise.
``automated_reason`` returns why a mail looks automatic (for the log and the message's
meta), or None for a mail a person wrote. The rules are those of RFC 3834 and what common
responders (Exchange, Gmail, Postfix, mailing-list managers) put in their mail.
"""

from __future__ import annotations

from email.message import Message

from channels.email.headers import header_text

_BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
_ROBOT_LOCAL_PARTS = {"mailer-daemon", "postmaster", "mail-daemon", "maildaemon"}
_FLAG_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Failed-Recipients")


def automated_reason(msg: Message, sender: str) -> str | None:
    """Why ``msg`` (sent by ``sender``, a lower-cased address) is automatic, or None."""
    auto = header_text(msg, "Auto-Submitted")
    if auto is not None and auto.split(";")[0].strip().lower() != "no":
        return f"Auto-Submitted: {auto[:40]}"
    precedence = header_text(msg, "Precedence")
    if precedence is not None and precedence.lower() in _BULK_PRECEDENCE:
        return f"Precedence: {precedence[:20]}"
    for name in ("List-Id", "List-Unsubscribe"):
        if header_text(msg, name) is not None:
            return f"{name} present"
    return_path = header_text(msg, "Return-Path")
    if return_path is not None and return_path.replace(" ", "") in ("<>", ""):
        return "empty Return-Path"
    for name in _FLAG_HEADERS:
        value = header_text(msg, name)
        if value is not None and value.lower() != "no":
            return f"{name} present"
    if msg.get_content_type() == "multipart/report":
        return "multipart/report (delivery or read report)"
    local = sender.partition("@")[0]
    if local in _ROBOT_LOCAL_PARTS:
        return f"sent by {local}"
    return None
