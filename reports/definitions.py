"""The published KPI definitions (Vietnamese and English), shown on every report and in README.

``DEFINITIONS`` maps a KPI name (the same name as the report's column or figure) to its labels
and its definition in both languages. Service level uses ONE form everywhere: Asterisk's
``SL`` = answered within T seconds of entering the queue / answered.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Definition:
    """A KPI's short label and its definition, in Vietnamese and English."""

    vi: str
    en: str
    text_vi: str
    text_en: str


D = Definition

#: KPI name -> definition, in the order reports list them
DEFINITIONS: dict[str, Definition] = {
    "offered": D(
        "Cuộc gọi đến",
        "Calls offered",
        "Mọi cuộc gọi thoại bắt đầu trong kỳ báo cáo (tính theo thời điểm bắt đầu, giờ Việt Nam).",
        "All voice calls that started in the period (by start time, Vietnam time).",
    ),
    "self_service": D(
        "Tự phục vụ trên IVR",
        "Self-served in the IVR",
        "Cuộc gọi kết thúc trong menu tự động (IVR) sau khi người gọi đã nhận được thông tin, "
        "không cần tổng đài viên.",
        "Calls that ended in the voice menu (IVR) after the caller got the information, "
        "without an agent.",
    ),
    "entered_queue": D(
        "Vào hàng đợi",
        "Entered a queue",
        "Cuộc gọi được chuyển vào hàng đợi để gặp tổng đài viên.",
        "Calls put in a queue to reach an agent.",
    ),
    "answered": D(
        "Được trả lời",
        "Answered",
        "Cuộc gọi được tổng đài viên nhận.",
        "Calls an agent answered.",
    ),
    "abandoned_ivr": D(
        "Bỏ máy trong IVR",
        "Abandoned in the IVR",
        "Người gọi gác máy khi đang ở menu tự động, trước khi vào hàng đợi.",
        "The caller hung up in the voice menu, before entering a queue.",
    ),
    "abandoned_queue": D(
        "Bỏ máy khi chờ",
        "Abandoned in queue",
        "Người gọi gác máy khi đang chờ trong hàng đợi.",
        "The caller hung up while waiting in a queue.",
    ),
    "message_left": D(
        "Để lại lời nhắn",
        "Messages left",
        "Người gọi để lại lời nhắn thoại thay vì tiếp tục chờ.",
        "The caller left a voice message instead of waiting.",
    ),
    "closed_hours": D(
        "Ngoài giờ làm việc",
        "Outside opening hours",
        "Cuộc gọi đến ngoài giờ làm việc, được thông báo giờ làm việc.",
        "Calls outside opening hours, told the opening hours.",
    ),
    "rejected_busy": D(
        "Từ chối do quá tải",
        "Rejected (busy)",
        "Cuộc gọi bị từ chối vì hàng đợi đã đầy.",
        "Calls turned away because the queue was full.",
    ),
    "callbacks": D(
        "Gọi lại",
        "Callbacks",
        "Cuộc gọi người gọi chọn được gọi lại thay vì chờ (kết quả 'callback'). Bằng 0 cho đến "
        "khi hệ thống phân phối cuộc gọi (ACD) có chức năng gọi lại.",
        "Calls whose caller chose to be called back instead of waiting (outcome 'callback'). "
        "Zero until the call distributor (ACD) offers callbacks.",
    ),
    "answered_in_sl": D(
        "Trả lời trong T giây",
        "Answered within T s",
        "Cuộc gọi được trả lời trong vòng T giây (≤ T) kể từ khi vào hàng đợi.",
        "Calls answered within T seconds (≤ T) of entering the queue.",
    ),
    "service_level": D(
        "Mức phục vụ (SL)",
        "Service level (SL)",
        "Số cuộc được trả lời trong vòng T giây kể từ khi vào hàng đợi / số cuộc được trả lời "
        "(dạng 'SL' của Asterisk; cuộc bỏ máy không tính). T mặc định 20 giây, chỉ tiêu mặc "
        "định 80%; báo cáo ghi rõ T và chỉ tiêu đã dùng.",
        "Calls answered within T seconds of entering the queue / calls answered (Asterisk's "
        "'SL' form; abandoned calls are not in it). T is 20 s and the target 80% unless the "
        "report states otherwise.",
    ),
    "asa_seconds": D(
        "Thời gian chờ TB (ASA)",
        "Average speed of answer (ASA)",
        "Tổng thời gian chờ trong hàng đợi (từ lúc vào hàng đợi đến lúc được trả lời) của các "
        "cuộc được trả lời / số cuộc được trả lời.",
        "Total queue wait (queue entry to answer) of answered calls / calls answered.",
    ),
    "aht_seconds": D(
        "Thời gian xử lý TB (AHT)",
        "Average handle time (AHT)",
        "(Thời gian đàm thoại, từ lúc trả lời đến lúc kết thúc, cộng thời gian xử lý sau cuộc "
        "gọi nếu có) / số cuộc được trả lời.",
        "(Talk time, answer to end, plus after-call work when recorded) / calls answered.",
    ),
    "abandon_rate": D(
        "Tỷ lệ bỏ máy",
        "Abandonment rate",
        "Số cuộc bỏ máy khi chờ / số cuộc vào hàng đợi. Lời nhắn, từ chối do quá tải và gọi "
        "lại được đếm riêng.",
        "Calls abandoned in queue / calls that entered a queue. Messages, busy rejections and "
        "callbacks are counted separately.",
    ),
    "first_response_seconds": D(
        "Phản hồi đầu tiên TB",
        "Mean first response",
        "Theo từng kênh: với cuộc gọi là thời gian chờ trong hàng đợi đến khi được trả lời; với "
        "tin nhắn (trò chuyện, Zalo, Facebook, thư điện tử) là thời gian từ tin nhắn đầu tiên "
        "của người dân đến câu trả lời đầu tiên của tổng đài viên (không tính trả lời tự động).",
        "Per channel: for calls, the queue wait until answered; for messages (chat, Zalo, "
        "Facebook, email), from the citizen's first message to an agent's first reply "
        "(automatic replies do not count).",
    ),
    "first_response_median_seconds": D(
        "Phản hồi đầu tiên (trung vị)",
        "Median first response",
        "Trung vị của thời gian phản hồi đầu tiên nói trên, theo từng kênh.",
        "The median of the first response time above, per channel.",
    ),
    "abandoned": D(
        "Bỏ dở",
        "Abandoned",
        "Theo từng kênh: cuộc gọi gác máy trong IVR hoặc khi chờ; tin nhắn mà người dân rời đi "
        "trước khi có bất kỳ câu trả lời nào (phiếu đóng mà không có trả lời của tổng đài viên).",
        "Per channel: calls hung up in the menu or while waiting; message conversations the "
        "citizen left before any reply (closed without an agent's answer).",
    ),
    "occupancy": D(
        "Tỷ lệ chiếm dụng",
        "Occupancy",
        "Thời gian xử lý / (thời gian xử lý + thời gian rảnh chờ cuộc gọi) của tổng đài viên. "
        "Chưa tính được (n/a): phiếu cuộc gọi không cho biết thời gian rảnh, cần dữ liệu trạng "
        "thái tổng đài viên từ ACD.",
        "Handle time / (handle time + available idle time) of an agent. Not computed (n/a): "
        "tickets do not record idle time; it needs agent state data from the ACD.",
    ),
    "complaints": D(
        "Phản ánh",
        "Complaints",
        "Phiếu thuộc lĩnh vực phản ánh (phan_anh) mở trong kỳ, mọi kênh.",
        "Tickets of category complaint (phan_anh) opened in the period, on any channel.",
    ),
    "resolve_hours": D(
        "Thời gian giải quyết",
        "Time to resolve",
        "Từ lúc cuộc gọi bắt đầu đến lúc phiếu chuyển sang 'đã giải quyết' (hoặc 'đã đóng' nếu "
        "đóng thẳng), tính bằng giờ; trung vị và trung bình của các phản ánh đã giải quyết.",
        "From the start of the call to the ticket becoming resolved (or closed, if closed "
        "directly), in hours; median and mean over the resolved complaints.",
    ),
    "overdue": D(
        "Quá hạn",
        "Overdue",
        "Phản ánh có hạn giải quyết đã qua mà chưa giải quyết hay đóng, hoặc được giải quyết "
        "sau hạn. Phản ánh chưa có hạn được đếm riêng ('chưa có hạn').",
        "Complaints whose due date has passed while not resolved or closed, or that were "
        "resolved after it. Complaints without a due date are counted apart ('no due date').",
    ),
    "satisfaction": D(
        "Mức hài lòng",
        "Satisfaction",
        "Điểm người gọi chấm sau cuộc gọi, từ 1 (không hài lòng) đến 5 (rất hài lòng): số lượt "
        "chấm, điểm trung bình và phân bố.",
        "The caller's score after the call, 1 (unhappy) to 5 (very happy): how many, the mean "
        "and the distribution.",
    ),
    "staffing": D(
        "Dự báo nhân lực (Erlang C)",
        "Staffing forecast (Erlang C)",
        "Số tổng đài viên cần cho mỗi giờ trong tuần để đạt mức phục vụ mục tiêu, theo mô hình "
        "Erlang C, từ số cuộc vào hàng đợi trung bình mỗi giờ và AHT đo được trong kỳ; có giới "
        "hạn tỷ lệ chiếm dụng và cộng thêm tỷ lệ vắng mặt (shrinkage) khi xếp lịch.",
        "Agents needed in each hour of the week to meet the service-level target, by Erlang C, "
        "from the mean calls entering a queue per hour and the AHT measured in the period; with "
        "an occupancy cap, and shrinkage added for scheduling.",
    ),
    "forwarded": D(
        "Phiếu chuyển cơ quan",
        "Forwarded",
        "Phiếu được tổng đài chuyển cho cơ quan xử lý trong kỳ (theo thời điểm chuyển).",
        "Tickets the centre forwarded to the agency in the period (by the time of forwarding).",
    ),
    "answered_on_time": D(
        "Trả lời đúng hạn",
        "Answered on time",
        "Phiếu chuyển trong kỳ mà cơ quan trả lời trước hạn (hạn tính theo ngày làm việc, bỏ "
        "thứ Bảy, Chủ Nhật, ngày lễ, Tết; gia hạn một lần thì tính hạn mới).",
        "Forwards of the period the agency answered by the deadline (working days: weekends, "
        "public holidays and Tết do not count; after the one extension, the new deadline).",
    ),
    "answered_late": D(
        "Trả lời trễ hạn",
        "Answered late",
        "Phiếu chuyển trong kỳ mà cơ quan trả lời sau hạn.",
        "Forwards of the period the agency answered after the deadline.",
    ),
    "overdue_open": D(
        "Quá hạn chưa trả lời",
        "Overdue, unanswered",
        "Phiếu chuyển trong kỳ, đến thời điểm lập báo cáo đã quá hạn mà cơ quan chưa trả lời "
        "(cũng chưa trả lại).",
        "Forwards of the period past their deadline when the report is made, neither answered "
        "nor sent back.",
    ),
    "sent_back": D(
        "Trả lại tổng đài",
        "Sent back",
        "Phiếu cơ quan trả lại cho tổng đài (không thuộc thẩm quyền hoặc thiếu thông tin), có "
        "nêu lý do.",
        "Forwards the agency sent back to the centre (not its competence, or not enough to act "
        "on), with a reason.",
    ),
    "answer_hours": D(
        "Thời gian trả lời (trung bình)",
        "Time to answer (mean)",
        "Từ lúc chuyển đến lúc cơ quan trả lời, tính bằng giờ (giờ lịch, không trừ ngày nghỉ).",
        "From forwarding to the agency's answer, in hours (calendar hours, days off included).",
    ),
    "answer_median_hours": D(
        "Thời gian trả lời (trung vị)",
        "Median time to answer",
        "Trung vị của thời gian trả lời nói trên, theo từng cơ quan.",
        "The median of the time to answer above, per agency.",
    ),
    "time_zone": D(
        "Múi giờ",
        "Time zone",
        "Mọi ngày, giờ, tuần, tháng theo giờ Việt Nam (UTC+7, Asia/Ho_Chi_Minh); tuần theo ISO "
        "(thứ Hai đến Chủ Nhật).",
        "Every day, hour, week and month is in Vietnam time (UTC+7, Asia/Ho_Chi_Minh); weeks "
        "are ISO weeks (Monday to Sunday).",
    ),
}


def markdown() -> str:
    """The definitions as a Markdown table (for README): KPI, Vietnamese, English."""
    lines = ["| KPI | Định nghĩa | Definition |", "|---|---|---|"]
    for d in DEFINITIONS.values():
        cells = (f"**{d.vi}** / {d.en}", d.text_vi, d.text_en)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
