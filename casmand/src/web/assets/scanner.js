// casman field scanner. The page only displays: every check and every write
// is the daemon's (/scanner/api/*). A keyboard-wedge scanner types a label
// and Enter into #scan, which keeps the focus: scan source, scan target,
// Enter (or Confirm) records it.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const scan = $("scan"), prompt = $("prompt"), cards = $("cards"), result = $("result");
  const confirmBtn = $("confirm"), retryBtn = $("retry"), list = $("list");
  const picker = $("snap-picker"), position = $("position");
  const TIMEOUT_MS = 15000;

  const st = {
    mode: "connect", step: "source", source: null, target: null, other: null,
    pending: null, busy: false, antenna: null, preview: null, layout: null,
    pickerFor: "connect",
  };

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v === null || v === undefined) continue;
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  }

  function rid() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  // GET: an answer or a thrown Error carrying the daemon's message.
  async function get(path, params) {
    const q = new URLSearchParams(params || {}).toString();
    const r = await fetch(path + (q ? "?" + q : ""), { credentials: "same-origin", headers: { Accept: "application/json" } });
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok || !body || body.ok === false) {
      const err = new Error((body && body.error) || ("HTTP " + r.status));
      err.kind = body && body.kind;
      throw err;
    }
    return body;
  }

  // POST: {answered: true, status, body} or {answered: false} when no answer came.
  async function post(path, body) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    try {
      const r = await fetch(path, {
        method: "POST", credentials: "same-origin", signal: ctl.signal,
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      });
      let json = null;
      try { json = await r.json(); } catch (e) { json = { ok: false, error: "HTTP " + r.status + " without an answer from casmand" }; }
      return { answered: true, status: r.status, body: json };
    } catch (e) {
      return { answered: false, error: String(e && e.message || e) };
    } finally {
      clearTimeout(timer);
    }
  }

  function show(kind, title, text, extra) {
    result.replaceChildren(el("div", { class: "box " + kind, "data-kind": kind }, el("strong", { text: title }), text ? el("span", { text }) : null, extra || null));
    // On a phone the answer must be in sight, with its buttons.
    if (kind !== "info") result.scrollIntoView({ block: "nearest" });
  }
  function clearResult() { result.replaceChildren(); }

  function focusScan() {
    if (!$("work").hidden && !(st.mode === "position" && st.antenna)) scan.focus({ preventScroll: true });
  }

  function setPrompt(text) { prompt.textContent = text; }

  function partCard(role, p, conns, bad) {
    const c = el("div", { class: "card part" + (bad ? " bad" : ""), "data-role": role, "data-part": p.id },
      el("span", { class: "role", text: role }),
      el("span", { class: "id", text: p.id }),
      el("span", { class: "type", text: [p.type, p.polarization || null].filter(Boolean).join(" ") }));
    if (conns && conns.length) {
      const ul = el("ul", { class: "conns" });
      for (const e of conns) ul.append(el("li", { text: e.source + " → " + e.target + "  (since " + e.since + ")" }));
      c.append(ul);
    } else if (conns) {
      c.append(el("ul", { class: "conns" }, el("li", { class: "muted", text: "no active connections" })));
    }
    // Scans made at different sites that break a rule together: say what to resolve.
    for (const d of p.conflicts || []) c.append(el("p", { class: "conflict", text: "⚠ conflict: " + d }));
    return c;
  }

  function drawCards() {
    cards.replaceChildren();
    if (st.source) cards.append(partCard(st.mode === "connect" ? "source" : "part", st.source.part, st.source.connections));
    if (st.mode === "connect" && st.target) {
      cards.append(el("div", { class: "arrow", text: "↓" }));
      cards.append(partCard("target", st.target.target, st.target.connections));
    }
  }

  function setConfirm(enabled, label) {
    confirmBtn.disabled = !enabled;
    confirmBtn.textContent = label || "Confirm";
  }

  function reset(keepResult) {
    Object.assign(st, { step: "source", source: null, target: null, other: null, pending: null, antenna: null, preview: null });
    cards.replaceChildren();
    list.replaceChildren();
    picker.hidden = true;
    position.hidden = true;
    retryBtn.hidden = true;
    setConfirm(false);
    if (!keepResult) clearResult();
    scan.value = "";
    const prompts = {
      connect: "Scan the source part", disconnect: "Scan the part to disconnect", remove: "Scan the part to remove",
      history: "Scan a part to see its history", position: "Scan the antenna to place",
    };
    setPrompt(prompts[st.mode]);
    $("chain-label").hidden = st.mode !== "connect";
    confirmBtn.hidden = st.mode === "history";
    const pick = $("snap-pick-toggle");
    if (pick) pick.hidden = st.mode !== "disconnect";
    document.body.dataset.step = "source";
    focusScan();
  }

  function setMode(mode) {
    st.mode = mode;
    for (const b of document.querySelectorAll(".modes button")) b.setAttribute("aria-pressed", String(b.dataset.mode === mode));
    document.body.dataset.mode = mode;
    reset();
  }

  // ---- connect ----
  async function connectSource(id) {
    const r = await get("/scanner/api/part", { id, role: "source" });
    if (r.problem) {
      cards.replaceChildren(partCard("source", r.part, r.connections, true));
      show("refused", "Cannot start here", r.problem);
      scan.value = "";
      return;
    }
    st.source = r;
    st.step = "target";
    document.body.dataset.step = "target";
    drawCards();
    clearResult();
    const next = r.part.next_type;
    if (next === "SNAP") {
      setPrompt("Pick the SNAP port below, or scan its label");
      openPicker("connect");
    } else {
      setPrompt("Scan the target (" + next + (r.part.polarization ? " " + r.part.polarization : "") + ")");
    }
  }

  async function connectTarget(id) {
    const r = await get("/scanner/api/check", { source: st.source.part.id, target: id });
    if (r.problem) {
      st.target = null;
      drawCards();
      cards.append(el("div", { class: "arrow", text: "↓" }), partCard("target", r.target, r.connections, true));
      show("refused", "Refused — nothing recorded", r.problem);
      scan.value = "";
      return;
    }
    st.target = r;
    st.step = "confirm";
    document.body.dataset.step = "confirm";
    picker.hidden = true;
    drawCards();
    st.pending = { path: "/scanner/api/connect", body: { request_id: rid(), source: r.source.id, target: r.target.id }, kind: "connect" };
    show("info", "Ready: " + r.source.id + " → " + r.target.id, "Press Enter or Confirm to record it.");
    setPrompt("Press Enter (or Confirm) to record");
    setConfirm(true, "Confirm connection");
  }

  // ---- disconnect / remove ----
  async function loadPart(id) {
    const r = await get("/scanner/api/part", { id, role: st.mode });
    st.source = r;
    drawCards();
    clearResult();
    list.replaceChildren();
    if (!r.connections.length) {
      show("info", r.part.id + " has no active connections", "Nothing to " + st.mode + ".");
      scan.value = "";
      st.source = null;
      return;
    }
    if (st.mode === "disconnect") {
      st.step = "target";
      document.body.dataset.step = "target";
      const box = el("div", { class: "pick", id: "pick" });
      for (const e of r.connections) {
        const other = e.source === r.part.id ? e.target : e.source;
        const b = el("button", { type: "button", "data-other": other, text: e.source + " → " + e.target });
        b.addEventListener("click", () => chooseOther(other));
        box.append(b);
      }
      list.replaceChildren(el("h2", { text: "Which connection?" }), box);
      if (r.connections.length === 1) chooseOther(r.connections.length && (r.connections[0].source === r.part.id ? r.connections[0].target : r.connections[0].source));
      else setPrompt("Tap the connection to end, or scan its other end");
    } else {
      st.step = "confirm";
      document.body.dataset.step = "confirm";
      st.pending = { path: "/scanner/api/remove", body: { request_id: rid(), part: r.part.id, confirm: true }, kind: "remove" };
      show("confirm", "Remove " + r.part.id + "?", "This ends all " + r.connections.length + " of its connections. Press Enter or the button to confirm.");
      setPrompt("Press Enter (or the button) to remove");
      setConfirm(true, "Yes, end all " + r.connections.length + " connection(s)");
    }
  }

  function chooseOther(other) {
    for (const b of document.querySelectorAll("#pick button")) b.setAttribute("aria-pressed", String(b.dataset.other === other));
    st.other = other;
    st.step = "confirm";
    document.body.dataset.step = "confirm";
    st.pending = { path: "/scanner/api/disconnect", body: { request_id: rid(), part: st.source.part.id, other }, kind: "disconnect" };
    show("confirm", "Disconnect " + st.source.part.id + " from " + other + "?", "Press Enter or Confirm to record it.");
    setPrompt("Press Enter (or Confirm) to disconnect");
    setConfirm(true, "Confirm disconnect");
    focusScan();
  }

  // ---- history ----
  async function history(id) {
    const r = await get("/scanner/api/history", { part: id });
    const t = el("table", { class: "hist", id: "history" }, el("thead", {}, el("tr", {}, el("th", { text: "When (UTC)" }), el("th", { text: "Event" }), el("th", { text: "By" }))));
    const tb = el("tbody");
    for (const e of r.events) {
      const arrow = e.status === "disconnected" ? " -X-> " : " → ";
      let who = "—";
      if (e.operator || e.client) who = (e.operator || "?") + (e.client ? " @ " + e.client : " (socket" + (e.uid !== null && e.uid !== undefined ? ", uid " + e.uid : "") + ")");
      else if (e.uid !== null && e.uid !== undefined) who = "uid " + e.uid;
      tb.append(el("tr", { class: e.status }, el("td", { text: (e.at || "").replace("T", " ").replace("Z", "") }), el("td", { class: "ev", text: e.source + arrow + e.target }), el("td", { class: "who", text: who })));
    }
    t.append(tb);
    list.replaceChildren(el("h2", { text: "History of " + r.part + " (" + r.events.length + ")" }), r.events.length ? t : el("p", { class: "muted", text: "No events." }));
    clearResult();
    scan.value = "";
  }

  // ---- position ----
  async function positionAntenna(id) {
    const r = await get("/scanner/api/antenna", { id });
    st.antenna = r.antenna;
    $("pos-antenna").textContent = r.antenna;
    $("pos-now").textContent = r.grid_code ? "Now at " + r.grid_code : "Not placed yet";
    if (!st.layout) st.layout = (await get("/scanner/api/layout")).arrays;
    const sel = $("pos-array");
    if (!sel.options.length) for (const a of st.layout) sel.append(el("option", { value: a.array_id, text: a.name + " (" + a.array_id + ")" }));
    position.hidden = false;
    clearResult();
    setPrompt("Choose the position, then Confirm");
    scan.value = "";
    await previewPosition();
    $("pos-row").focus();
  }

  function posDirection() {
    const p = document.querySelector("#pos-dir button[aria-pressed=true]");
    return p ? p.dataset.v : "N";
  }

  async function previewPosition() {
    if (!st.antenna) return;
    const dir = posDirection();
    const rowIn = $("pos-row");
    if (dir === "C") rowIn.value = "0"; else if (rowIn.value === "0") rowIn.value = "1";
    const a = (st.layout || []).find((x) => x.array_id === $("pos-array").value);
    if (a) { rowIn.max = String(Math.max(a.north_rows, a.south_rows)); $("pos-col").max = String(a.east_columns); }
    const code = $("pos-code"), occ = $("pos-occ");
    try {
      const r = await get("/scanner/api/grid", { array: $("pos-array").value, direction: dir, row: rowIn.value || "0", col: $("pos-col").value || "0", antenna: st.antenna });
      st.preview = r;
      code.textContent = r.grid_code;
      const notes = [];
      if (r.kernel_index !== null && r.kernel_index !== undefined) notes.push("kernel " + r.kernel_index);
      if (r.occupant && r.occupant !== st.antenna) { notes.push("occupied by " + r.occupant + " — assigning evicts it"); occ.className = "occ taken"; }
      else if (r.occupant === st.antenna) { notes.push(st.antenna + " is already here"); occ.className = "occ"; }
      else { notes.push("free"); occ.className = "occ"; }
      occ.textContent = notes.join(" · ");
      st.pending = { path: "/scanner/api/assign", body: { request_id: rid(), antenna: st.antenna, grid_code: r.grid_code }, kind: "assign" };
      setConfirm(r.occupant !== st.antenna, "Assign " + st.antenna + " to " + r.grid_code);
    } catch (e) {
      st.preview = null;
      st.pending = null;
      code.textContent = "—";
      occ.className = "occ taken";
      occ.textContent = e.message;
      setConfirm(false);
    }
  }

  // ---- SNAP picker ----
  function openPicker(purpose) {
    st.pickerFor = purpose;
    picker.hidden = false;
    $("snap-title").textContent = purpose === "connect" ? "Pick a free SNAP port" : "Pick the occupied SNAP port to disconnect";
    const ch = $("snap-chassis"), sl = $("snap-slot");
    ch.replaceChildren(); sl.replaceChildren(); $("snap-ports").replaceChildren();
    for (let c = 1; c <= 4; c++) {
      const b = el("button", { type: "button", "data-chassis": String(c), "aria-label": "Chassis " + c, text: String(c) });
      b.addEventListener("click", () => {
        for (const x of ch.children) x.setAttribute("aria-pressed", String(x === b));
        sl.replaceChildren(); $("snap-ports").replaceChildren();
        for (const s of "ABCDEFGHIJK") {
          const sb = el("button", { type: "button", "data-slot": s, text: s });
          sb.addEventListener("click", () => {
            for (const x of sl.children) x.setAttribute("aria-pressed", String(x === sb));
            loadPorts("SNAP" + c + s).catch((e) => show("refused", "Cannot list the ports", e.message));
          });
          sl.append(sb);
        }
      });
      ch.append(b);
    }
  }

  async function loadPorts(board) {
    const r = await get("/scanner/api/snap", { board });
    const box = $("snap-ports");
    box.replaceChildren();
    for (const p of r.ports) {
      const taken = !!p.occupant;
      const usable = st.pickerFor === "connect" ? !taken : taken;
      const b = el("button", { type: "button", "data-port": p.id, class: taken ? "occupied" : "free", disabled: !usable,
        title: taken ? p.id + " is connected to " + p.occupant : p.id + " is free" },
        el("span", { class: "n", text: String(p.port).padStart(2, "0") }), el("small", { text: taken ? p.occupant : "free" }));
      if (usable) b.addEventListener("click", () => pickPort(p.id));
      box.append(b);
    }
  }

  function pickPort(id) {
    if (st.pickerFor === "connect") run(() => connectTarget(id));
    else { picker.hidden = true; run(() => loadPart(id)); }
  }

  // ---- recording ----
  async function record() {
    const p = st.pending;
    if (!p || st.busy) return;
    st.busy = true;
    setConfirm(false, "Recording…");
    retryBtn.hidden = true;
    const r = await post(p.path, p.body);
    st.busy = false;
    if (!r.answered) {
      show("norecord", "NOT RECORDED", "No answer from casmand (" + r.error + "). Check the Wi-Fi and press Retry: a retry never records twice.");
      retryBtn.hidden = false;
      setConfirm(false);
      retryBtn.focus();
      return;
    }
    const b = r.body || {};
    if (b.needs_confirmation) {
      const yes = el("button", { type: "button", id: "confirm-evict", class: "big danger", text: b.evicts ? "Yes, evict " + b.evicts : "Yes, move " + b.antenna });
      yes.addEventListener("click", () => {
        p.body.confirm_evict = b.evicts || "";
        p.body.confirm_move = b.moves_from || "";
        record();
      });
      show("confirm", "Second confirmation needed", b.error, yes);
      setConfirm(false, "Confirm");
      return;
    }
    if (!b.ok) {
      show("refused", "Refused — nothing recorded", b.error || ("HTTP " + r.status));
      if (r.status === 403 && /sign in/.test(b.error || "")) await whoAmI();
      setConfirm(false);
      if (st.mode === "connect") { st.step = "target"; st.pending = null; setPrompt("Scan another target, or Start over"); }
      scan.value = "";
      focusScan();
      return;
    }
    const title = "RECORDED" + (b.replayed ? " (already, on the first try)" : "");
    const done = st.mode;
    if (done === "connect" && $("chain").checked && st.target && st.target.target.type !== "SNAP") {
      const next = st.target.target.id;
      reset(true);
      show("ok", title, b.message);
      await run(() => connectSource(next), true);
      show("ok", title, b.message + ". Chain: scan the part after " + next + ".");
    } else if (done === "position") {
      reset(true);
      show("ok", title, b.message);
    } else {
      reset(true);
      show("ok", title, b.message);
    }
    focusScan();
  }

  async function run(f, keep) {
    if (st.busy) return;
    st.busy = true;
    try { await f(); } catch (e) {
      show("refused", e.kind === "unknown" ? "Unknown part" : e.kind === "invalid" ? "Not a valid label" : "Refused", e.message);
      scan.value = "";
    } finally { st.busy = false; if (!keep) focusScan(); }
  }

  function onScan(value) {
    const v = value.trim().toUpperCase();
    if (!v) { if (st.step === "confirm" || (st.mode === "position" && st.pending)) record(); return; }
    scan.value = "";
    if (st.mode === "connect") {
      if (st.step === "source") return run(() => connectSource(v));
      return run(() => connectTarget(v));
    }
    if (st.mode === "disconnect" && st.step !== "source" && st.source) {
      const match = st.source.connections.find((e) => e.source === v || e.target === v);
      if (match) return chooseOther(v);
    }
    if (st.mode === "disconnect" || st.mode === "remove") { reset(); return run(() => loadPart(v)); }
    if (st.mode === "history") return run(() => history(v));
    if (st.mode === "position") return run(() => positionAntenna(v), true);
  }

  // ---- sign-in ----
  async function whoAmI() {
    const me = await get("/scanner/api/me");
    $("signin").hidden = me.signed_in;
    $("work").hidden = !me.signed_in;
    $("signin-token-label").hidden = !me.token_needed;
    $("who").textContent = me.signed_in ? me.operator + (me.admin ? " (admin)" : "") : "not signed in";
    $("admin-link").hidden = !me.admin;
    if (me.signed_in) { startLive(); focusScan(); } else $("signin-name").focus();
    return me;
  }

  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await post("/scanner/api/signin", { name: $("signin-name").value, token: $("signin-token").value });
    if (!r.answered) { $("signin-msg").textContent = "No answer from casmand: check the Wi-Fi and try again."; return; }
    if (!r.body.ok) { $("signin-msg").textContent = r.body.error; return; }
    $("signin-msg").textContent = "";
    $("signin-token").value = "";
    await whoAmI();
    setMode("connect");
  });
  $("signout").addEventListener("click", async () => { await post("/scanner/api/signout", {}); await whoAmI(); });

  // ---- wiring ----
  $("scan-form").addEventListener("submit", (ev) => { ev.preventDefault(); onScan(scan.value); });
  confirmBtn.addEventListener("click", () => record());
  retryBtn.addEventListener("click", () => record());
  $("reset").addEventListener("click", () => reset());
  for (const b of document.querySelectorAll(".modes button")) b.addEventListener("click", () => setMode(b.dataset.mode));
  for (const b of document.querySelectorAll("#pos-dir button")) b.addEventListener("click", () => {
    for (const x of document.querySelectorAll("#pos-dir button")) x.setAttribute("aria-pressed", String(x === b));
    previewPosition();
  });
  for (const id of ["pos-array", "pos-row", "pos-col"]) $(id).addEventListener("input", () => previewPosition());
  for (const id of ["pos-row", "pos-col"]) $(id).addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); if (!confirmBtn.disabled) record(); } });
  document.querySelector('#pos-dir button[data-v="N"]').setAttribute("aria-pressed", "true");
  // Tapping empty space gives the focus back to the scan field.
  document.addEventListener("click", (ev) => {
    if (!ev.target.closest("input, select, button, a, label, video")) focusScan();
  });

  // Part-number builder for damaged labels.
  let bType = "ANT", bPol = "P1";
  function bPreview() {
    const n = parseInt($("b-num").value, 10);
    const ok = n >= 1 && n <= 99999;
    $("b-preview").textContent = ok ? bType + String(n).padStart(5, "0") + bPol : "type a number 1–99999";
    $("b-use").disabled = !ok;
    return ok ? $("b-preview").textContent : null;
  }
  function choose(groupId, v) { for (const x of document.querySelectorAll("#" + groupId + " button")) x.setAttribute("aria-pressed", String(x.dataset.v === v)); }
  for (const b of document.querySelectorAll("#b-type button")) b.addEventListener("click", () => { bType = b.dataset.v; choose("b-type", bType); bPreview(); });
  for (const b of document.querySelectorAll("#b-pol button")) b.addEventListener("click", () => { bPol = b.dataset.v; choose("b-pol", bPol); bPreview(); });
  $("b-num").addEventListener("input", bPreview);
  choose("b-type", bType); choose("b-pol", bPol); bPreview();
  $("builder-toggle").addEventListener("click", () => { $("builder").hidden = !$("builder").hidden; if (!$("builder").hidden) $("b-num").focus(); });
  $("b-use").addEventListener("click", () => { const v = bPreview(); if (v) { $("builder").hidden = true; onScan(v); } });
  $("b-num").addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); $("b-use").click(); } });

  // A SNAP port without a label: in Disconnect mode, pick it on the board.
  const pickBtn = el("button", { type: "button", class: "link", id: "snap-pick-toggle", text: "Pick a SNAP port" });
  pickBtn.addEventListener("click", () => { if (st.mode === "disconnect") { reset(); openPicker("disconnect"); } else if (st.mode === "connect" && st.source && st.source.part.next_type === "SNAP") openPicker("connect"); });
  document.querySelector(".tools").append(pickBtn);

  // Camera scanning where the browser has the BarcodeDetector API (a secure
  // context: HTTPS, or localhost).
  if ("BarcodeDetector" in window && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    const cam = $("camera"), video = $("camview");
    cam.hidden = false;
    let stream = null;
    const stop = () => { if (stream) stream.getTracks().forEach((t) => t.stop()); stream = null; video.hidden = true; };
    cam.addEventListener("click", async () => {
      if (stream) { stop(); return; }
      try {
        const detector = new window.BarcodeDetector();
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
        video.srcObject = stream;
        video.hidden = false;
        await video.play();
        const tick = async () => {
          if (!stream) return;
          try {
            const codes = await detector.detect(video);
            if (codes.length) { const v = codes[0].rawValue; stop(); onScan(v); return; }
          } catch (e) { /* next frame */ }
          setTimeout(tick, 200);
        };
        tick();
      } catch (e) {
        stop();
        show("refused", "Camera unavailable", String(e && e.message || e));
      }
    });
  }

  // Live indicator: other devices' writes arrive as server-sent events
  // (once signed in: the stream needs the token or a sign-in).
  let events = null;
  function startLive() {
    if (events || !window.EventSource) return;
    const live = $("live");
    events = new EventSource("/events");
    events.addEventListener("hello", () => { live.textContent = "live"; live.classList.add("on"); });
    events.addEventListener("change", () => { document.body.dataset.changes = String(Number(document.body.dataset.changes || 0) + 1); });
    events.onerror = () => { live.textContent = "reconnecting"; live.classList.remove("on"); };
  }

  whoAmI().then(() => setMode("connect")).catch((e) => show("norecord", "casmand is not answering", e.message));
})();
