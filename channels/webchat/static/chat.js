// The citizen's chat page (/chat): a WebSocket to /chat/ws, the HTTP fallback when it
// cannot open, reconnection with backoff; the visitor's token lives in localStorage.
// Everything is shown with textContent: nothing anyone typed becomes markup.
(function () {
  "use strict";
  var KEY = "tongdai1022.visitor";
  var log = document.getElementById("log");
  var statusEl = document.getElementById("status");
  var errorEl = document.getElementById("error");
  var form = document.getElementById("send");
  var text = document.getElementById("text");
  var seen = {};
  var pending = [];  // messages typed while the socket was down: sent when it opens
  var ws = null, open = false, failures = 0, polling = null;

  function token() { try { return localStorage.getItem(KEY); } catch (e) { return null; } }
  function keep(t) { try { localStorage.setItem(KEY, t); } catch (e) { /* private mode */ } }
  function forget() { try { localStorage.removeItem(KEY); } catch (e) { /* ignore */ } }
  function newId() {
    var a = new Uint8Array(12); crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function setStatus(state, label) { statusEl.dataset.state = state; statusEl.textContent = label; }
  function showError(msg) { errorEl.textContent = msg; errorEl.hidden = !msg; }

  function show(m) {
    var key = (m.dir || "") + ":" + (m.key || "");
    if (m.key && seen[key]) { return; }
    if (m.key) { seen[key] = true; }
    var li = document.createElement("li");
    li.className = m.dir === "in" ? "in" : "out";
    li.dataset.key = m.key || "";
    var who = document.createElement("span");
    who.className = "who";
    who.textContent = m.dir === "in" ? "Bạn" : "Tổng đài 1022";
    li.appendChild(who);
    li.appendChild(document.createTextNode(m.text || ""));
    (m.files || []).forEach(function (f) {
      var s = document.createElement("span"); s.className = "who"; s.textContent = "📎 " + f; li.appendChild(s);
    });
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
  }

  // an agent types: shown for a few seconds (their next notice, or their message, ends it)
  var typingEl = document.getElementById("typing"), typingTimer = null;
  function typingShown(on) {
    if (typingTimer) { clearTimeout(typingTimer); typingTimer = null; }
    typingEl.hidden = !on;
    if (on) { typingTimer = setTimeout(function () { typingEl.hidden = true; }, 6000); }
  }

  function onEvent(e) {
    if (e.type === "welcome") { keep(e.token); }
    else if (e.type === "history") { (e.messages || []).forEach(show); }
    else if (e.type === "message") { show(e); if (e.dir === "out") { typingShown(false); } }
    else if (e.type === "typing") { typingShown(true); }
    else if (e.type === "ack") { showError(""); }
    else if (e.type === "error") { showError(e.message || "Lỗi"); if (e.code === "bad_token") { forget(); } }
  }

  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    try { ws = new WebSocket(proto + location.host + "/chat/ws"); } catch (e) { fallback(); return; }
    ws.onopen = function () {
      open = true; failures = 0;
      ws.send(JSON.stringify({ type: "hello", token: token() }));
      setStatus("open", "Đã kết nối");
      stopPolling();
      while (pending.length) { ws.send(JSON.stringify(pending.shift())); }
    };
    ws.onmessage = function (ev) { try { onEvent(JSON.parse(ev.data)); } catch (e) { /* ignore */ } };
    ws.onclose = function (ev) {
      var was = open; open = false; ws = null;
      if (ev.code === 4401) { forget(); }
      failures += 1;
      setStatus("closed", "Mất kết nối, đang thử lại…");
      if (!was && failures >= 3) { fallback(); }
      setTimeout(connect, Math.min(30000, 500 * Math.pow(2, Math.min(failures, 6))));
    };
  }

  function post(msg) {
    var body = Object.assign({ token: token() }, msg);
    return fetch("/chat/messages", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) { return r.json(); })
      .then(function (e) { if (e.token) { keep(e.token); } if (e.error) { showError(e.error.message); } else { showError(""); } });
  }
  function poll() {
    var t = token(); if (!t) { return; }
    fetch("/chat/messages", { headers: { "X-Visitor-Token": t } })
      .then(function (r) { return r.json(); }).then(onEvent).catch(function () { /* next time */ });
  }
  function fallback() { if (!polling) { setStatus("fallback", "Kết nối dự phòng"); polling = setInterval(poll, 3000); poll(); } }
  function stopPolling() { if (polling) { clearInterval(polling); polling = null; } }

  function send(value) {
    var v = value.trim(); if (!v) { return; }
    var msg = { type: "message", cid: newId(), text: v, website: form.elements.website.value };
    var name = form.elements.name.value.trim(), reach = form.elements.reach.value.trim();
    if (name) { msg.name = name; }
    if (reach) { msg.reach = reach; }
    show({ key: msg.cid, dir: "in", text: v });
    if (open && ws) { ws.send(JSON.stringify(msg)); }
    else if (polling) { post(msg); }
    else { pending.push(msg); }
  }
  form.addEventListener("submit", function (ev) { ev.preventDefault(); send(text.value); text.value = ""; text.focus(); });
  // the visitor types: told over the socket, at most every 2 s (never stored, never polled)
  var typedAt = 0;
  text.addEventListener("input", function () {
    var now = Date.now();
    if (open && ws && text.value && now - typedAt > 2000) { typedAt = now; ws.send(JSON.stringify({ type: "typing" })); }
  });
  text.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); }
  });
  document.getElementById("btn-agent").addEventListener("click", function () { send("Gặp tổng đài viên"); });
  connect();
})();
