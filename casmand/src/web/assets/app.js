// casman web views: live refresh on server-sent events, and the SNAP port
// modal. Everything works without this script (links and forms are plain).
"use strict";
(function () {
  const live = document.getElementById("live");
  const dialog = document.getElementById("detail-dialog");
  let timer = null;
  let busy = false;

  async function refresh() {
    if (busy) { timer = setTimeout(refresh, 300); return; }
    busy = true;
    try {
      const r = await fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (!r.ok) return;
      const doc = new DOMParser().parseFromString(await r.text(), "text/html");
      const fresh = doc.getElementById("main");
      const main = document.getElementById("main");
      if (fresh && main) {
        main.innerHTML = fresh.innerHTML;
        document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
      }
    } catch (e) {
      if (live) live.textContent = "offline";
    } finally {
      busy = false;
    }
  }

  if (window.EventSource && live) {
    const es = new EventSource("/events");
    es.addEventListener("hello", function () { live.textContent = "live"; live.classList.add("on"); });
    es.addEventListener("change", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    });
    es.onerror = function () { live.textContent = "reconnecting"; live.classList.remove("on"); };
  }

  async function openPort(port) {
    const r = await fetch("/snap/port/" + encodeURIComponent(port), { credentials: "same-origin" });
    const body = dialog.querySelector(".dialog-body");
    body.innerHTML = await r.text();
    dialog.dataset.port = port;
    dialog.showModal();
  }

  document.addEventListener("click", function (ev) {
    const a = ev.target.closest ? ev.target.closest("a[data-port]") : null;
    if (!a || !dialog || typeof dialog.showModal !== "function") return;
    if (ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
    ev.preventDefault();
    openPort(a.dataset.port).catch(function () { location.href = a.href; });
  });
  if (dialog) {
    dialog.addEventListener("click", function (ev) { if (ev.target === dialog) dialog.close(); });
  }
})();
