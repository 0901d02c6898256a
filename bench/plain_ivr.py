"""The dossiers of ``tongdai bench ivr``, in both places the two IVRs read them from.

``bench_dossiers`` makes a fixed set of dossiers with 10-digit codes (every status, some
overdue); ``seed_sql`` puts them in the run's PostgreSQL database (our IVR's ``dossiers``
table), ``seed_astdb`` in Asterisk's AstDB for the plain dialplan IVR
(``asterisk_conf/extensions_ivr_plain.conf``): key ``dossier/<code>``, value the prompt names
our IVR would play for it (``dossier_words``, the words of ``ivr.runner.CallFlow.say_dossier``)
joined by ``&``. The value is computed when seeded, as a province's nightly export into AstDB
would be: the dialplan has no engine to say dates or decide "overdue".
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Sequence
from datetime import date, timedelta

from dossiers.model import Dossier, DossierStatus
from dossiers.sql import upsert_dossiers
from ivr import say
from ivr.dialplan_export import ASTDB_FAMILY
from pbx.ami import AmiActionFailed, AmiClient
from tongdai.db import make_engine, upgrade_engine

CODE_DIGITS = 10
#: AMI reads lines of at most 1,024 bytes (manager.c): a longer ``Val:`` cannot be sent
AMI_LINE_MAX = 1024
_PROCEDURES = (
    ("Cấp giấy chứng nhận quyền sử dụng đất lần đầu", "Văn phòng Đăng ký đất đai tỉnh Quảng Nam"),
    ("Đăng ký thành lập doanh nghiệp", "Sở Kế hoạch và Đầu tư"),
    ("Cấp giấy phép xây dựng nhà ở riêng lẻ", "UBND thành phố Tam Kỳ"),
    ("Cấp đổi giấy phép lái xe", "Sở Giao thông vận tải"),
    ("Đăng ký khai sinh", "UBND phường An Mỹ"),
)


def bench_dossiers(n: int, today: date, seed: int = 1022) -> list[Dossier]:
    """``n`` dossiers with distinct 10-digit codes starting with 2 (unknown codes start with
    9: ``unknown_codes``), statuses round-robin, a third of the active ones overdue. Due dates
    are at least 3 days from ``today`` so "overdue" cannot flip between seeding and calling."""
    rng = random.Random(seed)
    codes: set[str] = set()
    while len(codes) < n:
        codes.add("2" + "".join(rng.choice("0123456789") for _ in range(CODE_DIGITS - 1)))
    out = []
    statuses = list(DossierStatus)
    for i, code in enumerate(sorted(codes)):
        procedure, agency = _PROCEDURES[i % len(_PROCEDURES)]
        status = statuses[i % len(statuses)]
        received = today - timedelta(days=rng.randint(20, 400))
        due: date | None = today + timedelta(days=rng.randint(3, 60))
        if i % 3 == 0:
            due = today - timedelta(days=rng.randint(3, 15))
        if i % 7 == 6:
            due = None
        out.append(Dossier(code, procedure, agency, status, received, due))
    return out


def unknown_codes(n: int, seed: int = 22) -> list[str]:
    """``n`` well-formed 10-digit codes no bench dossier has (they start with 9)."""
    rng = random.Random(seed)
    return [
        "9" + "".join(rng.choice("0123456789") for _ in range(CODE_DIGITS - 1)) for _ in range(n)
    ]


def dossier_words(dossier: Dossier, today: date) -> list[str]:
    """The prompt names our IVR plays for a found dossier (``CallFlow.say_dossier``; a unit
    test keeps the two equal)."""
    words = ["ho_so_ma", *say.digits(dossier.code), f"trang_thai_{dossier.status.value}"]
    words += ["ngay_tiep_nhan", *say.date_vi(dossier.received_date)]
    active = (DossierStatus.RECEIVED, DossierStatus.IN_PROGRESS)
    if dossier.due_date is not None and dossier.status in active:
        words += ["ngay_hen_tra", *say.date_vi(dossier.due_date)]
    if dossier.is_overdue(today):
        words.append("ho_so_qua_han")
    return words


def astdb_value(dossier: Dossier, today: date) -> str:
    """What ``DB(dossier/<code>)`` returns: the prompt names joined by ``&``."""
    value = "&".join(dossier_words(dossier, today))
    if len(value) + len("Val: \r\n") > AMI_LINE_MAX:
        raise ValueError(f"dossier {dossier.code}: {len(value)} characters do not fit an AMI line")
    return value


async def seed_astdb(client: AmiClient, dossiers: Sequence[Dossier], today: date) -> int:
    """Replace AstDB family ``dossier`` with ``dossiers`` (AMI DBDelTree, then one DBPut
    each); returns how many were written."""
    with contextlib.suppress(AmiActionFailed):  # no such family yet: nothing to delete
        await client.action("DBDelTree", Family=ASTDB_FAMILY)
    for d in dossiers:
        await client.action("DBPut", Family=ASTDB_FAMILY, Key=d.code, Val=astdb_value(d, today))
    return len(dossiers)


async def seed_sql(url: str, dossiers: Sequence[Dossier]) -> int:
    """Create the schema in the run's database and insert ``dossiers``."""
    engine = make_engine(url)
    try:
        await upgrade_engine(engine)
        return await upsert_dossiers(engine, dossiers)
    finally:
        await engine.dispose()
