// The portal's one <script src="https://<1022 host>/chat/widget.js" defer></script>:
// a button in the corner that opens the 1022 chat (/chat) in a frame.
(function () {
  "use strict";
  var me = document.currentScript;
  var origin = me ? new URL(me.src).origin : "";
  var frame = null;
  var button = document.createElement("button");
  button.type = "button";
  button.textContent = "Hỏi đáp 1022";
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-label", "Mở khung trò chuyện với Tổng đài 1022");
  button.style.cssText = "position:fixed;right:16px;bottom:16px;z-index:2147483000;padding:12px 18px;" +
    "border:0;border-radius:24px;background:#a4161a;color:#fff;font:15px system-ui,sans-serif;cursor:pointer";
  button.addEventListener("click", function () {
    if (!frame) {
      frame = document.createElement("iframe");
      frame.src = origin + "/chat";
      frame.title = "Trò chuyện với Tổng đài 1022";
      frame.style.cssText = "position:fixed;right:16px;bottom:72px;z-index:2147483000;width:min(380px,calc(100vw - 32px));" +
        "height:min(560px,calc(100vh - 96px));border:1px solid #ccc;border-radius:8px;background:#fff";
      document.body.appendChild(frame);
    } else {
      frame.hidden = !frame.hidden;
    }
    button.setAttribute("aria-expanded", String(!frame.hidden));
  });
  document.body.appendChild(button);
})();
