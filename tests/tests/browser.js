// Drives headless Chromium (Debian's /usr/bin/chromium) through the web views
// with playwright-core; run by tests/tests/browser.rs as
//   node browser.js BASE_URL OUT_DIR CASMANCTL SOCKET
// Prints one JSON line of results; exits non-zero on the first failure.
"use strict";
const { chromium } = require("playwright-core");
const { execFileSync } = require("child_process");
const path = require("path");

const [base, out, ctl, socket] = process.argv.slice(2);
const problems = [];
function check(ok, what) { if (!ok) problems.push(what); }

async function visit(context, url, errors) {
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") errors.push(url + ": " + m.text()); });
  page.on("pageerror", (e) => errors.push(url + ": " + e.message));
  const r = await page.goto(base + url, { waitUntil: "load" });
  check(r && r.status() === 200, url + " status " + (r && r.status()));
  return page;
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CASMAN_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const errors = [];
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const shot = (page, name, full) => page.screenshot({ path: path.join(out, name), fullPage: !!full });

  // Chains.
  let page = await visit(desktop, "/chains", errors);
  check(await page.locator("li.part.snap").count() >= 3, "chains: SNAP boxes");
  await shot(page, "chains.png", true);
  await page.close();

  // Grid: the antenna stands in its cell; the detail panel of a kernel search.
  page = await visit(desktop, "/grid?kernel=126", errors);
  check((await page.locator('td[data-grid="CC000E01"] .ant').textContent()) === "ANT00001", "grid: ANT00001 at CC000E01");
  check((await page.locator('td[data-grid="CN021E01"] .ant').textContent()) === "ANT00002", "grid: ANT00002 at CN021E01");
  check((await page.locator("#detail").textContent()).includes("SNAP1A05"), "grid: detail shows the SNAP port");
  await shot(page, "grid.png", false);
  await page.close();

  // SNAP ports: clicking a port opens its details in a modal.
  page = await visit(desktop, "/snap?chassis=1", errors);
  await page.waitForSelector("#live.on", { timeout: 10000 });
  await page.click('a[data-port="SNAP1A05"]');
  await page.waitForSelector('dialog[open] .port-detail[data-port="SNAP1A05"]', { timeout: 10000 });
  const modal = await page.locator("dialog[open]").textContent();
  check(modal.includes("Packet index") && modal.includes("41") && modal.includes("ANT00001P1"), "snap: modal content " + modal);
  await shot(page, "snap-modal.png", false);
  await page.click("dialog .close");
  check(!(await page.locator("dialog[open]").count()), "snap: modal closes");

  // Live update: a scan fills the port in without a reload.
  check(await page.locator("#port-SNAP1B07.empty").count() === 1, "snap: SNAP1B07 empty before the scan");
  execFileSync(ctl, ["--socket", socket, "scan", "connect", "BAC00002P2", "SNAP1B07"]);
  await page.waitForSelector("#port-SNAP1B07.p2", { timeout: 15000 });
  check((await page.locator("#port-SNAP1B07").textContent()).includes("ANT00002P2"), "snap: live port shows the head antenna");
  await shot(page, "snap.png", false);
  await page.close();

  // Status.
  page = await visit(desktop, "/status", errors);
  await shot(page, "status.png", true);
  await page.close();

  // A phone.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 });
  for (const [url, name] of [["/grid?antenna=ANT00001", "grid-phone.png"], ["/snap?chassis=1&slot=A", "snap-phone.png"], ["/chains?part=ANT00001P1", "chains-phone.png"]]) {
    page = await visit(phone, url, errors);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, url + " on a phone scrolls sideways by " + overflow + "px");
    await shot(page, name, false);
    await page.close();
  }

  await browser.close();
  check(errors.length === 0, "console errors: " + errors.join(" | "));
  console.log(JSON.stringify({ problems, errors }));
  process.exit(problems.length ? 1 : 0);
})().catch((e) => { console.log(JSON.stringify({ problems: problems.concat(String(e && e.stack || e)) })); process.exit(1); });
