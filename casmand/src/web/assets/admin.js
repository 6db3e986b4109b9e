// casman admin page: each button posts to /admin/api/* with a request id
// (a Retry after a lost answer never applies twice); the daemon decides.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
  function rid() { const b = new Uint8Array(16); crypto.getRandomValues(b); return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(""); }

  function box(target, kind, title, text, extra) {
    const d = el("div", "box " + kind);
    d.dataset.kind = kind;
    d.append(el("strong", null, title));
    if (text) d.append(el("span", null, text));
    if (extra) d.append(extra);
    target.replaceChildren(d);
  }

  async function send(path, body, out, again) {
    box(out, "info", "Working…");
    let r;
    try {
      const resp = await fetch(path, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      r = await resp.json();
    } catch (e) {
      const retry = el("button", "big danger", "Retry");
      retry.addEventListener("click", () => send(path, body, out, again));
      box(out, "norecord", "NOT RECORDED", "No answer from casmand (" + e.message + "). Retry is safe.", retry);
      return;
    }
    if (r.ok) {
      let link = null;
      if (r.labels_url) { link = el("a", "big", "Download the label sheet (PDF)"); link.href = r.labels_url; link.id = "labels-link"; }
      box(out, "ok", r.replayed ? "DONE (already, on the first try)" : "DONE", r.message, link);
      if (again) again();
      return;
    }
    let extra = null;
    if (r.problems) {
      extra = el("ul", "problems");
      for (const p of r.problems) extra.append(el("li", null, "line " + p.line + ", " + p.field + " " + JSON.stringify(p.value) + ": " + p.rule));
    }
    // With problems listed, the headline is enough of the message.
    box(out, "refused", "Refused — nothing changed", r.problems ? r.error.split(";")[0] : r.error, extra);
  }

  async function upload(fileInput, path, out) {
    const f = $(fileInput).files[0];
    if (!f) { box($(out), "refused", "Choose a CSV file first"); return; }
    const csv = await f.text();
    send(path, { request_id: rid(), csv, file_name: f.name }, $(out));
  }

  async function syncStatus() {
    const t = $("sync-status");
    try {
      const r = await (await fetch("/admin/api/sync-status", { credentials: "same-origin" })).json();
      if (!r.ok) { t.textContent = r.error; return; }
      const lines = [];
      lines.push("Site " + r.site + (r.reachable === null ? " · backups off" : r.reachable ? " · store reachable" : " · store NOT reachable: " + (r.error || "")));
      for (const d of r.databases) {
        lines.push(d.database + ": last backup " + (d.last_backup_at || "never") + ", " + d.writes_since_backup + " write(s) since" +
          (d.pending ? " · FAILED backup waiting (" + d.pending.attempts + " attempt(s)): " + (d.pending.last_error || "") : ""));
      }
      const pre = el("pre", "status", lines.join("\n"));
      t.replaceChildren(pre);
    } catch (e) { t.textContent = "No answer from casmand."; }
  }

  (async () => {
    const me = await (await fetch("/scanner/api/me", { credentials: "same-origin" })).json();
    $("who").textContent = me.signed_in ? me.operator + (me.admin ? " (admin)" : "") : "not signed in";
    if (!me.admin) {
      $("denied").hidden = false;
      box($("denied"), "refused", "Admins only", me.signed_in ? me.operator + " is not an admin operator (admin = true in [[http.operators]])." : "Sign in on the scanner first, with an admin operator's token.");
      return;
    }
    $("admin").hidden = false;
    $("coords-load").addEventListener("click", () => upload("coords-file", "/admin/api/load-coordinates", "coords-result"));
    $("boards-load").addEventListener("click", () => upload("boards-file", "/admin/api/load-snap-boards", "boards-result"));
    $("parts-add").addEventListener("click", () => send("/admin/api/add-parts", { request_id: rid(), part_type: $("parts-type").value, polarization: $("parts-pol").value, count: parseInt($("parts-count").value, 10) || 0 }, $("parts-result")));
    $("backup-now").addEventListener("click", () => send("/admin/api/backup", { request_id: rid() }, $("backup-result"), syncStatus));
    syncStatus();
  })();
})();
