"""The demo's mails and chats (``lab.demo_messages``): the settings it writes are a valid
``tongdai.toml`` with the lab's mail server and the chat, and the mail server it leaves
running can be found again (to stop it) from what it saved."""

from __future__ import annotations

from pathlib import Path

from channels.email.settings import EmailChannelSettings
from channels.webchat.settings import WebchatSettings
from lab.demo_messages import ANSWER, ANSWER_START, _load, _save, settings_text
from lab.mail import MailLab, MailPorts, MailUser
from tongdai.settings import PROJECT_HOME, load_settings


def _lab(tmp: Path) -> MailLab:
    secret = tmp / "1022.password"
    secret.write_text("pw\n", encoding="utf-8")
    secret.chmod(0o600)
    (tmp / "ca.pem").write_text("not read here\n", encoding="utf-8")
    return MailLab(
        tmp, MailPorts(2143, 2993, 2587, 2024, 2025),
        MailUser("1022@lab.test", "pw", secret), MailUser("congdan@lab.test", "pw2", secret),
        tmp / "ca.pem",
    )  # fmt: skip


def test_the_demo_settings_add_mail_and_chat_to_the_base(tmp_path: Path) -> None:
    lab = _lab(tmp_path)
    base = (PROJECT_HOME / "scripts" / "demo.toml").read_text(encoding="utf-8")
    path = tmp_path / "tongdai.toml"
    path.write_text(settings_text(base + "\n[lab]\ninstance = 6\n", lab, "http://127.0.0.1:8622"))
    s = load_settings(path)
    assert s.acd.distribution == "engine" and s.lab.instance == 6
    mail = EmailChannelSettings.from_table(str(path), s.channels.tables["email"])
    assert mail.imap.port == 2143 and mail.smtp.port == 2587 and mail.smtp.starttls
    assert mail.username == "1022@lab.test" and mail.domain == "lab.test"
    chat = WebchatSettings.from_table(str(path), s.channels.tables["webchat"])
    assert chat.allowed_origins == ("http://127.0.0.1:8622",)


def test_the_saved_mail_lab_is_the_same_lab_again(tmp_path: Path) -> None:
    lab = _lab(tmp_path)
    _save(lab, tmp_path)
    assert (tmp_path / "mail-lab.json").stat().st_mode & 0o077 == 0  # it holds passwords
    assert _load(tmp_path) == lab


def test_the_agents_answer_is_recognised_by_its_start() -> None:
    assert ANSWER.format(topic="x").startswith(ANSWER_START) and len(ANSWER_START) > 20
