// Drives the field scanner (/scanner, /admin) in headless Chromium at phone
// size (390x844) the way a technician with a keyboard-wedge scanner does:
// typing labels and Enter. Run by tests/tests/scanner_browser.rs as
//   node scanner_browser.js BASE_URL OUT_DIR OPERATOR_TOKEN
// Prints one JSON line of results; exits non-zero on any failure.
"use strict";
const { chromium } = require("playwright-core");
const path = require("path");

const [base, out, token] = process.argv.slice(2);
const problems = [];
const steps = [];
function check(ok, what) { if (!ok) problems.push(what); }

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CASMAN_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const errors = [];
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 });
  const page = await phone.newPage();
  page.on("console", (m) => { if (m.type() === "error" && !/Failed to load resource/.test(m.text())) errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(e.message));
  const shot = (name) => page.screenshot({ path: path.join(out, name), fullPage: false });
  const wait = (sel) => page.waitForSelector(sel, { timeout: 15000 });
  const focused = () => page.evaluate(() => document.activeElement && document.activeElement.id);
  async function scan(label) { await page.keyboard.type(label); await page.keyboard.press("Enter"); }
  async function resultText() { return (await page.locator("#result").textContent()) || ""; }
  async function mode(m) { await page.click(`.modes button[data-mode="${m}"]`); await wait(`body[data-mode="${m}"]`); }
  // The previous answer stays on screen until the next one arrives: wait for
  // the expected one (up to the timeout), then check what is shown.
  async function expectResult(kind, words, what) {
    await wait(`#result .box[data-kind="${kind}"]`);
    await page.waitForFunction(([k, w]) => {
      const r = document.getElementById("result");
      return r && r.querySelector(`.box[data-kind="${k}"]`) && r.textContent.includes(w);
    }, [kind, words], { timeout: 15000 }).catch(() => {});
    const t = await resultText();
    check(t.includes(words), what + ": expected " + kind + " with '" + words + "', got '" + t + "'");
    return t;
  }

  // Sign in once on this device.
  await page.goto(base + "/scanner", { waitUntil: "load" });
  await wait("#signin:not([hidden])");
  await page.fill("#signin-name", "alice");
  await page.fill("#signin-token", token);
  await shot("scanner-signin.png");
  await page.press("#signin-token", "Enter");
  await wait("#work:not([hidden])");
  check((await page.locator("#who").textContent()).includes("alice"), "signed in as alice");
  await page.waitForSelector("#live.on", { timeout: 10000 });
  check(await focused() === "scan", "the scan field has the focus after sign-in, not " + await focused());
  steps.push("signed in");

  // A wedge connect: label, Enter, label, Enter, Enter. Nothing tapped.
  await scan("ANT00001P1");
  await wait('.card[data-role="source"][data-part="ANT00001P1"]');
  check(await focused() === "scan", "focus stays on the scan field after the source");
  await scan("lna00001p1");
  await wait('body[data-step="confirm"]');
  await shot("scanner-confirm.png");
  await page.keyboard.press("Enter");
  await expectResult("ok", "Connected ANT00001P1 → LNA00001P1", "wedge connect");
  await shot("scanner-recorded.png");
  check(await focused() === "scan", "focus is back on the scan field after recording");
  steps.push("wedge connect");

  // Chain mode: the target becomes the next source, down to the BACBOARD.
  await page.check("#chain");
  await page.locator("#scan").focus();
  await scan("LNA00001P1");
  for (const next of ["CXS00001P1", "CXL00001P1", "BAC00001P1"]) {
    await wait('body[data-step="target"]');
    await scan(next);
    await wait('body[data-step="confirm"]');
    await page.keyboard.press("Enter");
    await wait(`.card[data-role="source"][data-part="${next}"]`);
  }
  steps.push("chain to BAC00001P1");

  // After a BACBOARD: the SNAP picker. SNAP1A05 is taken (greyed, with its occupant).
  await wait("#snap-picker:not([hidden])");
  await page.click('#snap-chassis button[data-chassis="1"]');
  await page.click('#snap-slot button[data-slot="A"]');
  await wait('#snap-ports button[data-port="SNAP1A05"]');
  const taken = page.locator('#snap-ports button[data-port="SNAP1A05"]');
  check(await taken.isDisabled(), "occupied SNAP1A05 cannot be chosen");
  check((await taken.getAttribute("class")).includes("occupied"), "SNAP1A05 greyed");
  check((await taken.textContent()).includes("BAC00002P1"), "SNAP1A05 shows its occupant");
  await taken.click({ force: true, timeout: 2000 }).catch(() => {});
  check(!(await page.locator('body[data-step="confirm"]').count()), "clicking the occupied port does nothing");
  await shot("scanner-snap.png");
  await page.click('#snap-ports button[data-port="SNAP1A06"]');
  await wait('body[data-step="confirm"]');
  await page.keyboard.press("Enter");
  await expectResult("ok", "BAC00001P1 → SNAP1A06", "BACBOARD to SNAP port");
  steps.push("snap picker");
  await page.uncheck("#chain");
  await page.click("#reset");

  // Refusals name the rule and the connection in the way; nothing is written.
  await scan("ANT00003P1");
  await wait('body[data-step="target"]');
  await scan("CXS00003P1");
  await expectResult("refused", "can only connect to LNA", "wrong successor");
  await shot("scanner-refused.png");
  await scan("LNA00003P2");
  await expectResult("refused", "Polarization mismatch", "polarization");
  await scan("LNA00001P1");
  await expectResult("refused", "already receives from ANT00001P1", "target has an incoming connection");
  steps.push("refusals");

  // Flaky Wi-Fi: the request reaches casmand but the answer is lost.
  await page.route("**/scanner/api/connect", async (route) => { await route.fetch(); await route.abort("connectionreset"); });
  await scan("LNA00003P1");
  await wait('body[data-step="confirm"]');
  await page.keyboard.press("Enter");
  await expectResult("norecord", "NOT RECORDED", "lost answer");
  check(await page.locator("#retry:not([hidden])").count() === 1, "Retry shown");
  await shot("scanner-not-recorded.png");
  await page.unroute("**/scanner/api/connect");
  await page.click("#retry");
  await expectResult("ok", "already, on the first try", "retry answered from the first write");
  steps.push("not recorded + retry");

  // Disconnect: scan the part, then its other end (or tap the connection).
  await mode("disconnect");
  await scan("CXS00001P1");
  await wait("#pick button");
  check(await page.locator("#pick button").count() === 2, "CXS00001P1 has two connections to pick from");
  await scan("CXL00001P1");
  await wait('body[data-step="confirm"]');
  await shot("scanner-disconnect.png");
  await page.keyboard.press("Enter");
  await expectResult("ok", "Disconnected CXS00001P1 -X-> CXL00001P1", "disconnect");
  steps.push("disconnect");

  // Remove: every connection, after a confirmation.
  await mode("remove");
  await scan("LNA00003P1");
  await expectResult("confirm", "Remove LNA00003P1?", "remove asks first");
  await shot("scanner-remove.png");
  await page.keyboard.press("Enter");
  await expectResult("ok", "Ended 1 connection(s) of LNA00003P1", "remove");
  steps.push("remove");

  // History, with who recorded each event and from where.
  await mode("history");
  await scan("CXS00001P1");
  await wait("#history tbody tr");
  const hist = await page.locator("#history").textContent();
  check(hist.includes("alice @ 127.0.0.1"), "history names the operator and the client: " + hist);
  await shot("scanner-history.png");
  await scan("BAC00002P1");
  await page.waitForFunction(() => document.querySelector("#list h2") && document.querySelector("#list h2").textContent.includes("BAC00002P1"));
  const hist2 = await page.locator("#history").textContent();
  check(hist2.includes("carol (socket"), "history names casmanctl's operator: " + hist2);
  steps.push("history");

  // Position: live grid code, occupancy, and a second confirmation to evict.
  await mode("position");
  await scan("ANT00003P1");
  await wait("#position:not([hidden])");
  await page.click('#pos-dir button[data-v="C"]');
  await page.fill("#pos-col", "1");
  await page.waitForFunction(() => document.getElementById("pos-code").textContent === "CC000E01");
  await page.waitForFunction(() => document.getElementById("pos-occ").textContent.includes("occupied by ANT00001"));
  await shot("scanner-position.png");
  await page.click("#confirm");
  await expectResult("confirm", "occupied by ANT00001", "eviction needs a second confirmation");
  await wait("#confirm-evict");
  check((await page.locator("#confirm-evict").textContent()).includes("ANT00001"), "the button names who is evicted");
  await shot("scanner-evict.png");
  await page.click("#confirm-evict");
  await expectResult("ok", "evicted ANT00001", "assign with eviction");
  steps.push("position");

  // The part-number builder for a damaged label.
  await mode("connect");
  await page.click("#builder-toggle");
  await page.click('#b-type button[data-v="LNA"]');
  await page.fill("#b-num", "2");
  await page.click('#b-pol button[data-v="P2"]');
  check((await page.locator("#b-preview").textContent()) === "LNA00002P2", "builder pads to 5 digits");
  await shot("scanner-builder.png");
  await page.click("#b-use");
  await wait('.card[data-role="source"][data-part="LNA00002P2"]');
  steps.push("builder");

  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, "the scanner scrolls sideways by " + overflow + "px");

  // The chains view shows what the scanner recorded.
  const chains = await phone.newPage();
  await chains.goto(base + "/chains?part=ANT00001P1", { waitUntil: "load" });
  const ct = await chains.locator("main").textContent();
  check(ct.includes("LNA00001P1") && ct.includes("CXS00001P1"), "chains page shows the scanned chain");
  await chains.close();

  // Admin: a CSV with a bad line loads nothing and names the line.
  await page.goto(base + "/admin", { waitUntil: "load" });
  await wait("#admin:not([hidden])");
  await page.waitForFunction(() => document.getElementById("sync-status").textContent.includes("parts.db"));
  await shot("admin.png");
  const csv = "chassis,slot,sn,mac,ip,feng_id,notes\n2,A,201,00:29:c4:e8:02:0a,192.168.121.10,20,\n2,Z,202,00:29:c4:e8:02:0b,192.168.121.11,21,\n";
  await page.setInputFiles("#boards-file", { name: "boards.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
  await page.click("#boards-load");
  await wait('#boards-result .box[data-kind="refused"]');
  const bt = await page.locator("#boards-result").textContent();
  check(bt.includes("line 3") && bt.includes("nothing was loaded"), "CSV errors by line: " + bt);
  await page.locator("#boards-result").scrollIntoViewIfNeeded();
  await shot("admin-csv-error.png");
  steps.push("admin");

  // Dark mode, for the record.
  await page.emulateMedia({ colorScheme: "dark" });
  await page.goto(base + "/scanner", { waitUntil: "load" });
  await wait("#work:not([hidden])");
  await scan("CXL00003P1");
  await wait('.card[data-role="source"]');
  await shot("scanner-dark.png");

  await browser.close();
  check(errors.length === 0, "console errors: " + errors.join(" | "));
  console.log(JSON.stringify({ problems, steps, errors }));
  process.exit(problems.length ? 1 : 0);
})().catch((e) => { console.log(JSON.stringify({ problems: problems.concat(String(e && e.stack || e)), steps })); process.exit(1); });
