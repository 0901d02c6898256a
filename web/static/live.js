// Live updates of the wallboard and the agent console over server-sent events (/live).
// Everything from the server is put in the page with textContent only (never innerHTML):
// a caller's number or an agent's note can never become markup.
(function () {
  "use strict";
  var L = JSON.parse(document.getElementById("labels").textContent);
  var page = document.body.className;
  var skew = 0; // server clock - this browser's clock, seconds
  var status = document.getElementById("live-status");

  function $(sel, root) { return (root || document).querySelector(sel); }
  function text(el, value) { if (el) { el.textContent = value == null ? "" : String(value); } }
  function attr(name, value) { return "[" + name + '="' + CSS.escape(value) + '"]'; }
  function now() { return Date.now() / 1000 + skew; }
  function dur(s) {
    if (s == null || isNaN(s)) { return "–"; }
    s = Math.max(0, Math.floor(s));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
  }
  var VN = {timeZone: "Asia/Ho_Chi_Minh", day: "2-digit", month: "2-digit", year: "numeric",
            hour: "2-digit", minute: "2-digit", hour12: false};
  function vnTime(iso) { return iso ? new Date(iso).toLocaleString("vi-VN", VN) : ""; }
  function pct(v) { return v == null ? "–" : (v * 100).toFixed(1).replace(".", ",") + " %"; }
  function below(el, value, target) {
    if (el) { el.classList.toggle("below", value != null && target != null && value < target); }
  }
  function stateLabel(a) {
    var s = L.agent_states[a.state] || a.state;
    if (a.pause_reason) { s += " · " + (L.pause_reasons[a.pause_reason] || a.pause_reason); }
    return s;
  }
  function cell(tr, value) { var td = document.createElement("td"); text(td, value); tr.appendChild(td); return td; }
  function setStatus(state, label) { if (status) { status.dataset.state = state; text(status, label); } }

  function tick() {
    var t = now();
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var since = parseFloat(el.dataset.since);
      text(el, isNaN(since) ? "–" : dur(t - since));
    });
    if (page === "wallboard") {
      var oldest = null;
      document.querySelectorAll("tr[data-queue] .oldest").forEach(function (el) {
        var s = parseFloat(el.dataset.since);
        if (!isNaN(s) && (oldest === null || s < oldest)) { oldest = s; }
      });
      text($("#t-longest"), oldest === null ? "–" : dur(t - oldest));
    }
  }

  // -- wallboard ------------------------------------------------------------------------------
  function perChannel(el, d) {
    var keys = Object.keys(d || {}).sort(), total = 0, parts = [];
    keys.forEach(function (k) { total += d[k]; parts.push((L.channels[k] || k) + " " + d[k]); });
    var small = document.createElement("small");
    small.textContent = parts.join(", ");
    el.replaceChildren(document.createTextNode(String(total) + (keys.length ? " " : "")), small);
    return total;
  }

  function wallboardState(s) {
    var waiting = 0, on = 0, convWaiting = 0, convOpen = 0;
    s.queues.forEach(function (q) {
      var row = $("tr" + attr("data-queue", q.name));
      waiting += q.waiting;
      if (!row) { return; }
      text($(".waiting", row), q.waiting);
      $(".oldest", row).dataset.since = q.oldest_at == null ? "" : q.oldest_at;
      var cb = $(".callbacks", row);
      cb.dataset.live = q.callbacks_waiting;
      text(cb, q.callbacks_waiting + parseInt(cb.dataset.tickets || "0", 10));
      text($(".serving", row), q.agents_serving);
      convWaiting += perChannel($(".conv-waiting", row), q.conversations_waiting);
      var open = $(".conv-open", row);
      convOpen += perChannel(open, q.conversations_open);
      open.classList.toggle("below", q.conversations_escalated > 0);
    });
    s.agents.forEach(function (a) {
      var row = $("tr" + attr("data-agent", a.id));
      if (a.state !== "logged_out") { on += 1; }
      if (!row) { return; }
      row.dataset.state = a.state;
      text($(".state .badge", row), stateLabel(a));
      $(".since", row).dataset.since = a.since;
      text($(".caller", row), a.caller || "");
      text($(".queue", row), a.queue || "");
      text($(".calls", row), a.calls_today);
      text($(".convs", row), a.conversations_open + "/" + a.conversation_capacity);
    });
    var body = $("#calls");
    var rows = document.createDocumentFragment();
    s.calls.forEach(function (c) {
      var tr = document.createElement("tr");
      tr.dataset.call = c.id;
      tr.dataset.state = c.state;
      cell(tr, c.caller || "Ẩn số");
      cell(tr, c.queue);
      cell(tr, L.call_states[c.state] || c.state);
      var since = cell(tr, "");
      since.className = "since";
      since.dataset.since = c.connected_at || c.entered_at;
      cell(tr, c.agent || "");
      cell(tr, c.ticket || "");
      rows.appendChild(tr);
    });
    body.replaceChildren(rows);
    text($("#calls-total"), "(" + s.calls_total + ")");
    text($("#t-waiting"), waiting);
    text($("#t-agents"), on);
    text($("#t-conv-waiting"), convWaiting);
    text($("#t-conv-open"), convOpen);
  }

  function wallboardStats(st) {
    Object.keys(st.queues || {}).forEach(function (name) {
      var row = $("tr" + attr("data-queue", name));
      var q = st.queues[name];
      if (!row) { return; }
      text($(".answered", row), q.answered);
      text($(".abandoned", row), q.abandoned);
      text($(".sl", row), pct(q.service_level));
      below($(".sl", row), q.service_level, st.sl_target);
      var cb = $(".callbacks", row);
      cb.dataset.tickets = q.callbacks;
      text(cb, q.callbacks + parseInt(cb.dataset.live || "0", 10));
    });
    Object.keys(st.agents || {}).forEach(function (id) {
      var row = $("tr" + attr("data-agent", id));
      if (row) { text($(".aht", row), dur(st.agents[id].aht_s)); }
    });
    if (st.total) {
      text($("#t-answered"), st.total.answered);
      text($("#t-abandoned"), st.total.abandoned);
      text($("#t-sl"), pct(st.total.service_level));
      below($("#t-sl"), st.total.service_level, st.sl_target);
      text($("#t-callbacks"), st.total.callbacks);
      if ($("#t-fwd-overdue")) { text($("#t-fwd-overdue"), st.total.forwards_overdue); }
    }
  }

  // -- agent console ----------------------------------------------------------------------------
  var shownCall = ($("#call") || {dataset: {}}).dataset.call || "";

  function renderCall(call) {
    var panel = $("#call");
    var t = call.ticket;
    panel.hidden = false;
    panel.dataset.call = call.id;
    panel.dataset.ticket = t ? t.code : "";
    text($("#call-status"), "Đang nghe máy");
    text($("#c-caller"), call.caller || (t && t.caller) || "Ẩn số");
    text($("#c-queue"), call.queue || (t && t.queue) || "");
    var link = $("#c-code");
    text(link, t ? t.code : "");
    link.href = t ? "/tickets/" + encodeURIComponent(t.code) : "#";
    var path = document.createDocumentFragment();
    (t ? t.ivr_path : []).forEach(function (s) {
      var li = document.createElement("li");
      text(li, s.node + (s.key ? " (" + s.key + ")" : ""));
      path.appendChild(li);
    });
    $("#c-path").replaceChildren(path);
    text($("#c-category"), t && t.category ? (L.categories[t.category] || t.category) : "");
    var d = call.dossier;
    text($("#c-dossier"), d ? d.code + " · " + d.procedure + " · " + d.status : (t && t.dossier_code) || "");
    var rows = document.createDocumentFragment();
    (call.earlier || []).forEach(function (e) {
      var tr = document.createElement("tr");
      var a = document.createElement("a");
      a.href = "/tickets/" + encodeURIComponent(e.code);
      text(a, e.code);
      cell(tr, "").appendChild(a);
      cell(tr, vnTime(e.started_at));
      cell(tr, L.categories[e.category] || e.category || "");
      cell(tr, L.outcomes[e.outcome] || e.outcome || "");
      cell(tr, L.statuses[e.status] || e.status);
      rows.appendChild(tr);
    });
    $("#c-earlier").replaceChildren(rows);
    var form = $("#c-form");
    form.hidden = !t;
    if (t) {
      form.action = "/tickets/" + encodeURIComponent(t.code);
      $("#c-cat").value = t.category || "";
      $("#c-notes").value = t.notes || "";
    }
  }

  function loadCall() {
    fetch("/api/v1/console", {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data && data.call) { renderCall(data.call); } })
      .catch(function () { shownCall = ""; });
  }

  function consoleState(s) {
    var me = s.me;
    if (!me) { return; }
    var box = $("#me");
    box.dataset.state = me.state;
    text($("#my-state"), stateLabel(me));
    $("#my-since").dataset.since = me.since;
    text($("#my-calls"), me.calls_today);
    var list = document.createDocumentFragment();
    s.queues.forEach(function (q) {
      var li = document.createElement("li");
      text(li, (L.categories[q.name] || q.name) + ": " + q.waiting + " đang chờ");
      list.appendChild(li);
    });
    $("#my-queues").replaceChildren(list);
    if (me.call_id && me.call_id !== shownCall) {
      shownCall = me.call_id;
      loadCall();
    } else if (!me.call_id && shownCall) {
      shownCall = "";
      text($("#call-status"), "Cuộc gọi đã kết thúc");
    }
  }

  function consoleStats(st) {
    if (st.agent) { text($("#my-aht"), dur(st.agent.aht_s)); }
  }

  function ticketChanged(t) {
    if (t.status === "new") { return; }
    var row = $("#callbacks tr" + attr("data-code", t.code));
    if (row) { row.remove(); }
  }

  // what is down (the degraded banner): rebuilt from each "health" event, text only
  function healthChanged(h) {
    var box = $("#degraded");
    if (!box) { return; }
    var list = document.createDocumentFragment();
    (h.down || []).forEach(function (d) {
      var li = document.createElement("li");
      li.dataset.dep = d.name;
      var b = document.createElement("b");
      text(b, d.label);
      li.appendChild(b);
      li.appendChild(document.createTextNode(" mất kết nối từ " + d.since_vi + " ("));
      var since = document.createElement("span");
      since.dataset.since = d.since;
      text(since, dur(now() - d.since));
      li.appendChild(since);
      li.appendChild(document.createTextNode("): " + d.effect + "."));
      list.appendChild(li);
    });
    $("#degraded-list").replaceChildren(list);
    box.hidden = !(h.down && h.down.length);
  }

  // -- the stream -------------------------------------------------------------------------------
  if (page !== "wallboard" && page !== "console") { return; }
  var onState = page === "wallboard" ? wallboardState : consoleState;
  var onStats = page === "wallboard" ? wallboardStats : consoleStats;
  var es = new EventSource("/live");
  es.onopen = function () { setStatus("open", "Cập nhật trực tiếp"); };
  es.onerror = function () { setStatus("error", "Mất kết nối, đang thử lại…"); };
  es.addEventListener("state", function (ev) {
    var s = JSON.parse(ev.data);
    skew = (s.server_now || s.at) - Date.now() / 1000;
    onState(s);
    tick();
    document.body.dataset.liveAt = String(s.at);
  });
  es.addEventListener("stats", function (ev) { onStats(JSON.parse(ev.data)); });
  es.addEventListener("ticket", function (ev) { ticketChanged(JSON.parse(ev.data)); });
  es.addEventListener("health", function (ev) { healthChanged(JSON.parse(ev.data)); });
  setInterval(tick, 1000);
})();
