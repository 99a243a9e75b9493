// One-line embed: <script src="http://HOST:PORT/widget.js" async></script>
// Adds a button in the corner that opens the chat page in an iframe served by the same rag.
(function () {
  "use strict";
  const script = document.currentScript;
  const origin = new URL(script.src).origin;
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Ask the news";
  button.setAttribute("aria-expanded", "false");
  button.style.cssText = "position:fixed;right:1rem;bottom:1rem;z-index:2147483646;padding:.6rem 1rem;" +
    "border:0;border-radius:2rem;background:#1f6feb;color:#fff;font:15px system-ui,sans-serif;cursor:pointer";
  const frame = document.createElement("iframe");
  frame.src = `${origin}/?embed=1`;
  frame.title = "rag chat";
  frame.hidden = true;
  frame.style.cssText = "position:fixed;right:1rem;bottom:4rem;z-index:2147483647;width:min(26rem,92vw);" +
    "height:min(36rem,80vh);border:1px solid #d8dde4;border-radius:.75rem;background:#fff;" +
    "box-shadow:0 8px 30px rgba(0,0,0,.18)";
  button.addEventListener("click", () => {
    frame.hidden = !frame.hidden;
    button.setAttribute("aria-expanded", String(!frame.hidden));
  });
  document.body.append(frame, button);
})();
