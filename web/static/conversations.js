// The agents' conversation pages: the lists and one conversation, kept current by long
// polling /api/conversations (the server answers as soon as a message is stored or its
// delivery changes). What citizens typed is only ever set with textContent.
(function () {
  "use strict";
  var L = JSON.parse(document.getElementById("labels").textContent);
  var VN = {timeZone: "Asia/Ho_Chi_Minh", day: "2-digit", month: "2-digit", year: "numeric",
            hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false};
  function vnTime(iso) { return iso ? new Date(iso).toLocaleString("vi-VN", VN) : ""; }
  function el(tag, cls, txt) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (txt != null) { e.textContent = String(txt); }
    return e;
  }
  function later(fn, ms) { setTimeout(fn, ms); }

  // -- the lists ---------------------------------------------------------------------------
  var lists = document.getElementById("conv-lists");
  if (lists) {
    var version = parseInt(lists.dataset.version, 10) || 0;
    var fill = function (id, rows, empty) {
      var body = document.getElementById(id);
      body.replaceChildren();
      if (!rows.length) { var tr = el("tr", "empty"); var td = el("td", null, empty); td.colSpan = 7; tr.appendChild(td); body.appendChild(tr); return; }
      rows.forEach(function (c) {
        var tr = el("tr"); tr.dataset.code = c.code; tr.dataset.channel = c.channel;
        tr.appendChild(el("td", null, L.channels[c.channel] || c.channel));
        tr.appendChild(el("td", null, c.caller || ""));
        tr.appendChild(el("td", "last", c.last ? c.last.text : ""));
        tr.appendChild(el("td", null, c.last ? vnTime(c.last.at) : ""));
        tr.appendChild(el("td", null, c.queue || ""));
        tr.appendChild(el("td", null, c.agent || ""));
        var td = el("td"); var a = el("a", null, c.code); a.href = "/console/conversations/" + encodeURIComponent(c.code); td.appendChild(a); tr.appendChild(td);
        body.appendChild(tr);
      });
    };
    var loop = function () {
      fetch("/api/conversations?wait=20&since=" + version, {headers: {"Accept": "application/json"}})
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
        .then(function (d) {
          version = d.version;
          fill("conv-mine", d.mine, "Không có hội thoại nào đang giao cho bạn.");
          fill("conv-waiting", d.waiting, "Không có ai đang chờ.");
          fill("conv-others", d.others, "Không có.");
          var pc = document.getElementById("per-channel"); pc.replaceChildren();
          Object.keys(d.per_channel).forEach(function (ch) {
            var n = d.per_channel[ch], tr = el("tr"); tr.dataset.channel = ch;
            [L.channels[ch] || ch, n.mine, n.waiting, n.others].forEach(function (x) { tr.appendChild(el("td", null, x)); });
            pc.appendChild(tr);
          });
          loop();
        })
        .catch(function () { later(loop, 3000); });
    };
    loop();
  }

  // -- one conversation --------------------------------------------------------------------
  var conv = document.getElementById("conv");
  if (conv) {
    var code = conv.dataset.code;
    var since = parseInt(conv.dataset.version, 10) || 0;
    var list = document.getElementById("messages");
    var form = document.getElementById("reply-form");
    var reply = document.getElementById("reply");
    var status = document.getElementById("reply-status");
    var url = "/api/conversations/" + encodeURIComponent(code) + "/messages";

    var who = function (m) {
      if (m.author === "citizen") { return "Người dân"; }
      if (m.author === "system") { return "Hệ thống"; }
      return m.author_id || "Tổng đài viên";
    };
    var render = function (m) {
      var li = el("li", "msg " + m.dir);
      li.dataset.id = m.id; li.dataset.dir = m.dir; li.dataset.delivery = m.delivery;
      var head = el("span", "who", who(m) + " · " + vnTime(m.at));
      if (m.dir === "out") {
        head.appendChild(document.createTextNode(" · "));
        head.appendChild(el("span", "delivery", (L.delivery[m.delivery] || m.delivery) + (m.delivery_error ? ": " + m.delivery_error : "")));
      }
      li.appendChild(head);
      li.appendChild(el("span", "body", m.text));
      if (m.reach) { li.appendChild(el("span", "who", "Liên hệ: " + m.reach)); }
      (m.attachments || []).forEach(function (a) {
        var link = el("a", "file", "📎 " + a.name); link.href = a.url; li.appendChild(link);
      });
      return li;
    };
    var show = function (messages) {
      messages.forEach(function (m) {
        var old = list.querySelector('li[data-id="' + m.id + '"]');
        var li = render(m);
        if (old) { old.replaceWith(li); } else { list.appendChild(li); }
      });
    };
    // the citizen types (web chat): shown for a few seconds after each notice
    var typingEl = document.getElementById("typing"), typingTimer = null;
    var typingShown = function (on) {
      if (typingTimer) { clearTimeout(typingTimer); typingTimer = null; }
      typingEl.hidden = !on;
      if (on) { typingTimer = setTimeout(function () { typingEl.hidden = true; }, 6000); }
    };
    var loop = function () {
      fetch(url + "?wait=20&since=" + since, {headers: {"Accept": "application/json"}})
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
        .then(function (d) {
          since = d.version; show(d.messages);
          typingShown(!!(d.typing && d.typing.citizen));
          document.getElementById("v-agent").textContent = d.ticket.agent || "–";
          loop();
        })
        .catch(function () { later(loop, 3000); });
    };
    loop();

    if (form) {
      document.getElementById("btn-canned").addEventListener("click", function () {
        var opt = document.getElementById("canned").selectedOptions[0];
        if (!opt || !opt.value) { return; }
        var body = opt.dataset.body || "", at = reply.selectionStart || reply.value.length;
        reply.value = reply.value.slice(0, at) + body + reply.value.slice(reply.selectionEnd || at);
        reply.focus();
      });
      // the agent types: the visitor is told, at most every 2 s (the server throttles too)
      var typedAt = 0;
      reply.addEventListener("input", function () {
        var now = Date.now();
        if (!reply.value || now - typedAt < 2000) { return; }
        typedAt = now;
        fetch("/api/conversations/" + encodeURIComponent(code) + "/typing", {
          method: "POST", headers: {"X-CSRF-Token": form.dataset.csrf}
        }).catch(function () { /* a nicety: nothing to retry */ });
      });
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var text = reply.value.trim(); if (!text) { return; }
        status.textContent = "Đang gửi…"; status.dataset.state = "sending";
        fetch(url, {
          method: "POST",
          headers: {"Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf, "Accept": "application/json"},
          body: JSON.stringify({text: text})
        }).then(function (r) {
          return r.json().then(function (d) {
            if (r.ok) {
              // the long poll may already have brought it back with a newer delivery state
              if (!list.querySelector('li[data-id="' + d.id + '"]')) { show([d]); }
              reply.value = ""; status.textContent = ""; status.dataset.state = "sent";
            } else {
              status.textContent = (d.error && d.error.message) || ("Lỗi " + r.status); status.dataset.state = "refused";
            }
          });
        }).catch(function () { status.textContent = "Không gửi được, xin thử lại."; status.dataset.state = "refused"; });
      });
    }
  }
})();
