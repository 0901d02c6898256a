"""The procedure look-up (main menu 1, then 5): the pure part.

The caller keys the national code's seven digits (``1.004227`` -> ``1004227``) and ``#``;
``words`` is what they hear, as word prompts: "Thủ tục mã số 1 0 0 4 2 2 7", the procedure's
name (its own prompt, ``ivr.prompts.procedure_prompt``, when it was built), "thời hạn giải
quyết mười lăm ngày làm việc" (or "trong ngày"), "phí và lệ phí bảy mươi lăm nghìn đồng" (or
"không thu phí, lệ phí"). An unknown code hears "not found".

``ivr.runner.CallFlow.procedure_node`` does the I/O around these.
"""

from __future__ import annotations

from dossiers.procedures import KEYED_DIGITS, Procedure
from ivr import say

#: GET DATA asks for one more key than a code has, so a code keyed too long is told apart
MAX_KEYED = KEYED_DIGITS + 1

#: every prompt ``words`` can return besides the spoken numbers and the name
PROMPTS: frozenset[str] = frozenset(
    {
        "thu_tuc_ma",
        "thu_tuc_khong_tim_thay",
        "ma_thu_tuc_khong_hop_le",
        "thoi_han_giai_quyet",
        "ngay_lam_viec",
        "giai_quyet_trong_ngay",
        "le_phi",
        "dong",
        "khong_thu_le_phi",
    }
)


def words(keyed: str, procedure: Procedure | None, name_prompt: str | None) -> list[str]:
    """The prompts telling the caller about the procedure keyed as ``keyed``; ``name_prompt``
    says its name (None: no audio of the name was built, the code stands for it)."""
    if procedure is None:
        return ["thu_tuc_khong_tim_thay"]
    out = ["thu_tuc_ma", *say.digits(keyed)]
    if name_prompt is not None:
        out.append(name_prompt)
    if procedure.time_limit_days == 0:
        out.append("giai_quyet_trong_ngay")
    else:
        out += ["thoi_han_giai_quyet", *say.number(procedure.time_limit_days), "ngay_lam_viec"]
    if procedure.fee_vnd == 0:
        out.append("khong_thu_le_phi")
    else:
        out += ["le_phi", *say.number(procedure.fee_vnd), "dong"]
    return out
