"""A postal delivery registration and its states; the checks on what people type.

States and the transitions between them (``TRANSITIONS``)::

    requested --complete (address taken)--> registered --hand over--> handed_to_post --> delivered
        \\                                       \\                         \\
         \\---------------------------------------\\-------------------------\\--> cancelled

``requested`` comes from the telephone: an address cannot be keyed, so the IVR records the
caller's wish (dossier, number, ticket) and an agent calls back to take the address, which
makes it ``registered``. A registration made in the console starts ``registered``.
``delivered`` and ``cancelled`` are final. Every change is an ``Event`` kept with the
registration and shown on its ticket.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dossiers.model import CODE_RE
from postal.places import PlaceBook
from tongdai.errors import TongdaiError


class PostalState(StrEnum):
    REQUESTED = "requested"
    REGISTERED = "registered"
    HANDED_TO_POST = "handed_to_post"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


TRANSITIONS: dict[PostalState, frozenset[PostalState]] = {
    PostalState.REQUESTED: frozenset({PostalState.REGISTERED, PostalState.CANCELLED}),
    PostalState.REGISTERED: frozenset({PostalState.HANDED_TO_POST, PostalState.CANCELLED}),
    PostalState.HANDED_TO_POST: frozenset({PostalState.DELIVERED, PostalState.CANCELLED}),
    PostalState.DELIVERED: frozenset(),
    PostalState.CANCELLED: frozenset(),
}
#: not final: a dossier has at most one registration in these states
ACTIVE_STATES = (PostalState.REQUESTED, PostalState.REGISTERED, PostalState.HANDED_TO_POST)

STATE_LABELS = {
    PostalState.REQUESTED: "Chờ lấy địa chỉ",
    PostalState.REGISTERED: "Đã đăng ký",
    PostalState.HANDED_TO_POST: "Đã giao bưu điện",
    PostalState.DELIVERED: "Đã phát",
    PostalState.CANCELLED: "Đã hủy",
}

#: when the recipient would like the postman to come
PREFERRED_TIMES = {
    "ca_ngay": "Cả ngày (giờ hành chính)",
    "sang": "Buổi sáng (7h30 - 11h30)",
    "chieu": "Buổi chiều (13h30 - 17h00)",
    "ngoai_gio": "Ngoài giờ (17h00 - 19h00)",
}

#: the history note of a request made through the IVR (key 3 after a dossier look-up)
IVR_REQUEST_NOTE = "yêu cầu qua tổng đài tự động: chờ lấy địa chỉ"
MAX_NAME = 100
MAX_STREET = 200
MAX_NOTE = 500
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PHONE_SEPARATORS = re.compile(r"[\s.\-()]")
PHONE_RE = re.compile(r"^0[0-9]{9,10}$")


class PostalError(TongdaiError):
    """A request refused; ``reason`` is a stable id for the web layer."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PostalInvalid(PostalError):
    """Input that does not pass the checks: ``errors`` maps each bad field to a message in
    Vietnamese (shown beside the field in the console, returned as is by the API)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("invalid_input", "; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


class IllegalPostal(PostalError):
    """A transition the registration's state does not allow (says from what, to what)."""

    def __init__(self, state: PostalState, wanted: PostalState) -> None:
        super().__init__(
            "illegal_state", f"registration is {state.value}: cannot become {wanted.value}"
        )
        self.state, self.wanted = state, wanted


def check_move(to: PostalState) -> None:
    """A store's ``move`` (a button): never to ``requested``, and ``registered`` only through
    ``complete``, which brings the address."""
    if to is PostalState.REGISTERED or to is PostalState.REQUESTED:
        raise PostalError("invalid_input", f"{to.value}: use complete() with the address")


@dataclass(frozen=True)
class Address:
    """Who receives the result, where and when (all checked by ``check_address``)."""

    recipient: str
    phone: str
    province: str
    district: str
    ward: str
    street: str
    preferred_time: str


@dataclass(frozen=True)
class Registration:
    id: int
    ticket_code: str
    dossier_code: str
    state: PostalState
    #: the number to call back (a ``requested`` registration: the caller's number, unchecked)
    phone: str | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    recipient: str | None = None
    province: str | None = None
    district: str | None = None
    ward: str | None = None
    street: str | None = None
    preferred_time: str | None = None
    note: str | None = None
    #: when it became ``registered`` (the day it is on the post office's list)
    registered_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def address_line(self) -> str:
        parts = (self.street, self.ward, self.district, self.province)
        return ", ".join(p for p in parts if p)


@dataclass(frozen=True)
class Event:
    at: datetime
    from_state: PostalState | None
    to_state: PostalState
    by: str
    note: str | None = None


def _one_line(raw: object) -> str:
    text = raw.strip() if isinstance(raw, str) else ""
    return " ".join(text.split())


def normalise_phone(raw: str) -> str:
    """``+84 905 111 222`` and ``0905.111.222`` are ``0905111222``."""
    phone = _PHONE_SEPARATORS.sub("", raw)
    if phone.startswith("+84"):
        phone = "0" + phone[3:]
    elif phone.startswith("84") and len(phone) in (11, 12):
        phone = "0" + phone[2:]
    return phone


def check_dossier_code(raw: object) -> str:
    code = _one_line(raw)
    if not CODE_RE.match(code):
        raise PostalInvalid({"dossier_code": "Mã hồ sơ phải gồm 4 đến 16 chữ số."})
    return code


def check_note(raw: object) -> str | None:
    note = raw.strip() if isinstance(raw, str) else ""
    if _CONTROL.sub("", note.replace("\n", " ")) != note.replace("\n", " "):
        raise PostalInvalid({"note": "Ghi chú có ký tự không hợp lệ."})
    if len(note) > MAX_NOTE:
        raise PostalInvalid({"note": f"Ghi chú tối đa {MAX_NOTE} ký tự."})
    return note or None


def check_address(data: Mapping[str, object], places: PlaceBook) -> Address:
    """The address fields of a form or an API body, checked together: every problem is
    reported at once (``PostalInvalid.errors``). ``district`` is the district's id in
    ``places``; the address keeps the names."""
    errors: dict[str, str] = {}
    raw = {k: data.get(k) for k in ("recipient", "phone", "district", "ward", "street")}
    for key, value in raw.items():
        if value is not None and not isinstance(value, str):
            errors[key] = "Phải là chuỗi ký tự."
    if any(isinstance(v, str) and _CONTROL.search(v) for v in raw.values()):
        bad = [k for k, v in raw.items() if isinstance(v, str) and _CONTROL.search(v)]
        errors.update({k: "Có ký tự điều khiển không hợp lệ." for k in bad})
    recipient = _one_line(raw["recipient"])
    if "recipient" not in errors and not 2 <= len(recipient) <= MAX_NAME:
        errors["recipient"] = f"Xin nhập họ tên người nhận (2 đến {MAX_NAME} ký tự)."
    phone = normalise_phone(_one_line(raw["phone"]))
    if "phone" not in errors and not PHONE_RE.match(phone):
        errors["phone"] = "Số điện thoại phải có 10 hoặc 11 chữ số và bắt đầu bằng số 0."
    district = places.district(_one_line(raw["district"]))
    ward = _one_line(raw["ward"])
    if district is None:
        errors.setdefault("district", "Xin chọn quận, huyện, thị xã, thành phố trong danh sách.")
    elif ward not in district.wards:
        errors.setdefault("ward", f"Xin chọn xã, phường, thị trấn thuộc {district.name}.")
    street = _one_line(raw["street"])
    if "street" not in errors and not 3 <= len(street) <= MAX_STREET:
        errors["street"] = f"Xin nhập số nhà, đường hoặc thôn, tổ (3 đến {MAX_STREET} ký tự)."
    preferred = _one_line(data.get("preferred_time") or "ca_ngay")
    if preferred not in PREFERRED_TIMES:
        errors["preferred_time"] = "Xin chọn thời gian nhận trong danh sách."
    if errors:
        raise PostalInvalid(errors)
    assert district is not None
    return Address(recipient, phone, places.province, district.name, ward, street, preferred)
