"""Vietnamese labels and formats of the interface (states, outcomes, dates, numbers).

The same dictionaries go to the page's script as JSON (``labels_data``), so a state shown by a
live update reads exactly like one rendered by the server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from postal.model import STATE_LABELS
from tongdai.clock import VN_TZ

AGENT_STATES = {
    "logged_out": "Đã đăng xuất",
    "available": "Sẵn sàng",
    "ringing": "Đang đổ chuông",
    "on_call": "Đang nghe máy",
    "wrap_up": "Hoàn tất cuộc gọi",
    "paused": "Tạm nghỉ",
}
PAUSE_REASONS = {
    "break": "Nghỉ giải lao",
    "meal": "Nghỉ ăn",
    "training": "Đào tạo",
    "back_office": "Việc văn phòng",
    "missed_calls": "Nhỡ nhiều cuộc gọi",
}
CALL_STATES = {
    "waiting": "Đang chờ",
    "offered": "Đang đổ chuông",
    "connected": "Đang nói chuyện",
    "callback_waiting": "Chờ gọi lại",
    "callback_dialing": "Đang gọi lại",
}
OUTCOMES = {
    "self_service": "Tự phục vụ",
    "answered": "Đã trả lời",
    "abandoned_ivr": "Bỏ máy ở menu",
    "abandoned_queue": "Bỏ máy khi chờ",
    "message_left": "Để lại lời nhắn",
    "closed_hours": "Ngoài giờ",
    "rejected_busy": "Quá tải",
    "error": "Lỗi hệ thống",
    "timeout_queue": "Chờ quá lâu",
    "callback_failed": "Gọi lại không được",
    "callback_cancelled": "Huỷ gọi lại",
}
STATUSES = {
    "new": "Mới",
    "in_progress": "Đang xử lý",
    "resolved": "Đã giải quyết",
    "closed": "Đã đóng",
}
SPY_MODES = {"listen": "Nghe", "whisper": "Nhắc", "barge": "Tham gia"}
OPS = {"login": "Đăng nhập", "logout": "Đăng xuất", "pause": "Tạm nghỉ", "unpause": "Làm việc"}

FORWARD_STATES = {
    "forwarded": "Chờ trả lời",
    "extended": "Đã gia hạn",
    "answered": "Đã trả lời",
    "sent_back": "Đã trả lại",
}
POSTAL_STATES = {s.value: label for s, label in STATE_LABELS.items()}
NOTIFY = {"pending": "chưa gửi email", "sent": "đã gửi email", "failed": "gửi email lỗi"}

#: messages after a form, by key (never the user's own text: nothing to reflect)
DONE = {
    "saved": "Đã lưu.",
    "state": "Đã đổi trạng thái.",
    "spy": "Điện thoại của bạn đang đổ chuông.",
    "announce_set": "Đã đặt thông báo đặc biệt.",
    "announce_clear": "Đã xoá thông báo đặc biệt.",
    "calling": "Điện thoại của bạn đổ chuông trước, sau đó hệ thống gọi người dân.",
    "user_added": "Đã thêm tài khoản.",
    "role_changed": "Đã đổi vai trò.",
    "user_disabled": "Đã khoá tài khoản (các phiên đăng nhập của tài khoản đã kết thúc).",
    "user_enabled": "Đã mở khoá tài khoản.",
    "password_reset": "Đã đặt lại mật khẩu (các phiên đăng nhập của tài khoản đã kết thúc).",
    "merged": "Đã gộp người liên hệ.",
    "forwarded": "Đã chuyển phiếu cho cơ quan.",
    "answered": "Đã gửi trả lời.",
    "extended": "Đã gia hạn (chỉ được một lần).",
    "sent_back": "Đã trả lại phiếu cho tổng đài 1022.",
    "answer_back": "Đã gửi trả lời cho người dân và giải quyết phiếu.",
    "callback_done": "Đã gọi lại báo kết quả.",
    "postal_registered": "Đã đăng ký nhận kết quả qua bưu điện.",
    "postal_completed": "Đã nhập địa chỉ: hồ sơ đã được đăng ký nhận qua bưu điện.",
    "postal_state": "Đã cập nhật trạng thái bưu chính.",
    "resolved": "Đã giải quyết hội thoại.",
    "transferred": "Đã chuyển hội thoại.",
}
FAILED = {
    "unknown_contact": "Không có người liên hệ này (hoặc đã được gộp).",
    "illegal_transition": "Không thể chuyển sang trạng thái này lúc này.",
    "illegal_status": "Không thể chuyển phiếu sang trạng thái này.",
    "held_by_agency": "Phiếu đang được chuyển cơ quan: chờ cơ quan trả lời (hoặc trả lại phiếu); "
    'khi cơ quan đã trả lời, dùng "Gửi trả lời và giải quyết".',
    "forbidden": "Bạn không có quyền làm việc này.",
    "invalid_input": "Dữ liệu nhập không hợp lệ.",
    "invalid_reason": "Lý do tạm nghỉ không hợp lệ.",
    "invalid_number": "Số điện thoại không hợp lệ.",
    "telephony_unavailable": "Tổng đài (AMI) không phản hồi, xin thử lại.",
    "acd_unavailable": "Bộ phân phối cuộc gọi không chạy.",
    "not_on_call": "Tổng đài viên không đang nghe máy.",
    "agent_busy": "Tổng đài viên đang bận.",
    "no_phone": "Tài khoản của bạn chưa có số máy lẻ.",
    "unknown_agent": "Không có tổng đài viên này.",
    "not_found": "Không tìm thấy.",
    "synthesis": "Không tạo được âm thanh thông báo.",
    "csrf": "Thiếu mã bảo vệ biểu mẫu (CSRF) hoặc phiên đã hết hạn: xin tải lại trang.",
    "no_agent": "Tài khoản của bạn chưa gắn với tổng đài viên nào.",
    "phone_not_configured": "Máy của bạn chưa được khai báo là máy giám sát trong cấu hình "
    "phân phối cuộc gọi (bảng [supervisors] của tệp ACD).",
    "user_exists": "Tên đăng nhập này đã có.",
    "weak_password": "Mật khẩu quá ngắn.",
    "self_lockout": "Không thể tự khoá hoặc tự bỏ quyền quản trị của chính mình.",
    "unknown_agency": "Không có cơ quan này trong danh sách.",
    "already_forwarded": "Phiếu đang ở một cơ quan khác.",
    "ticket_done": "Phiếu đã giải quyết hoặc đã đóng.",
    "not_answered": "Cơ quan chưa trả lời.",
    "already_replied": "Đã gửi trả lời cho người dân rồi.",
    "no_callback": "Câu trả lời này không cần gọi lại.",
    "illegal_forward": "Không thể làm việc này ở trạng thái hiện tại (chỉ được gia hạn một lần).",
    "reply_refused": "Không gửi được trả lời trên kênh của người dân.",
    "no_agency": "Tài khoản của bạn chưa gắn với cơ quan nào.",
    "already_registered": "Hồ sơ này đã có đăng ký nhận qua bưu điện chưa kết thúc.",
    "illegal_state": "Không thể chuyển đăng ký bưu chính sang trạng thái này.",
    "forward_open": "Phiếu đang chờ cơ quan trả lời: chưa giải quyết được (xem trang phiếu).",
    "transfer_refused": "Không chuyển được: tổng đài viên đó không nhận thêm hội thoại lúc này "
    "(đã nghỉ, tạm nghỉ hoặc đã đủ số hội thoại) hoặc không có hàng chờ này.",
    "no_acd": "Bộ phân phối hội thoại không chạy: chưa chuyển được.",
}


def vn_datetime(value: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    return value.astimezone(VN_TZ).strftime(fmt) if value is not None else ""


def vn_iso(value: str | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    """An ISO date-time string (as the JSON views carry) in Vietnam time."""
    if not value:
        return ""
    try:
        return vn_datetime(datetime.fromisoformat(value), fmt)
    except ValueError:
        return value


def vn_number(value: float | int | None, decimals: int = 0) -> str:
    """1234567.5 -> ``1.234.567,5`` (Vietnamese separators)."""
    if value is None:
        return "–"
    text = f"{value:,.{decimals}f}"
    return text.replace(",", " ").replace(".", ",").replace(" ", ".")


def duration(seconds: float | None) -> str:
    """``m:ss`` or ``h:mm:ss``."""
    if seconds is None:
        return "–"
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{vn_number(value * 100, 1)} %"


CHANNELS = {
    "voice": "Điện thoại",
    "email": "Email",
    "webchat": "Chat trên cổng",
    "zalo": "Zalo",
    "facebook": "Facebook",
}
DELIVERY = {
    "received": "đã nhận",
    "pending": "đang gửi",
    "sent": "đã gửi",
    "failed": "gửi không được",
}


def labels_data(categories: dict[str, str]) -> dict[str, Any]:
    """The labels the page's script needs (``{{ labels | tojson }}`` in the base template)."""
    return {
        "agent_states": AGENT_STATES,
        "pause_reasons": PAUSE_REASONS,
        "call_states": CALL_STATES,
        "outcomes": OUTCOMES,
        "statuses": STATUSES,
        "categories": categories,
        "spy_modes": SPY_MODES,
        "channels": CHANNELS,
        "delivery": DELIVERY,
    }
