// The operators' console (/console) in a real browser: Debian's chromium, headless, driven by
// puppeteer-core, against a real server. Run by tests/api/console.rs with CYBERHUB_URL and the
// test secrets; CONSOLE_SCREENSHOTS=<dir> also saves a screenshot of each main view there
// (docs/console). Any error the page logs (a CSP violation included) fails the run.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import puppeteer from "puppeteer-core";

import { admin, api, apiOk, BASE_URL, closeAll, connect, newUser, sendPayment, token, waitFor } from "./helpers.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = process.env.CONSOLE_SCREENSHOTS;
const WAIT = { timeout: 10_000 };

let browser;
let page;
let profile;
const pageErrors = [];

async function shot(name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.$eval("#toast", (el) => { el.hidden = true; });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Waits until the trimmed text of the first element matching `selector` satisfies `predicate`
 *  (polled from here: the page's CSP rightly forbids evaluating strings in it). */
async function textBecomes(selector, predicate, what) {
  const deadline = Date.now() + WAIT.timeout;
  let now = "(no element)";
  while (Date.now() < deadline) {
    now = await page.$eval(selector, (el) => el.textContent.trim()).catch(() => "(no element)");
    if (predicate(now)) return now;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what}: ${selector} shows ${JSON.stringify(now)}`);
}

async function setInput(selector, value) {
  await page.$eval(selector, (el) => { el.value = ""; });
  await page.type(selector, String(value));
}

async function go(hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
}

before(async () => {
  profile = mkdtempSync(join(tmpdir(), "cyberhub-chromium-"));
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 860 });
  page.on("pageerror", (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    // Failed API calls the test provokes answer 4xx on purpose; everything else is a defect.
    if (msg.type() === "error" && !/status of 4\d\d/.test(msg.text())) pageErrors.push(`console: ${msg.text()}`);
  });
});

after(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  assert.deepEqual(pageErrors, [], "the page logged no error and no CSP violation");
});

afterEach(() => closeAll());

describe("the operators' console in chromium", () => {
  test("is served with a strict CSP and refuses non-admin and expired tokens", { timeout: 60_000 }, async () => {
    const player = newUser();
    const response = await page.goto(`${BASE_URL}/console#token=${player.token}`, { waitUntil: "load" });
    assert.match(response.headers()["content-security-policy"], /default-src 'none'/);
    await textBecomes("[data-testid=signin-error]", (t) => t.includes("not an admin"), "a player token");
    assert.equal(await page.evaluate(() => location.hash), "", "the token left the address bar");
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, "a refused token is not kept");
    assert.equal(await page.$eval("#nav", (el) => el.offsetParent === null), true, "no navigation before sign-in");
    await shot("signin");

    const expired = token({ sub: admin.id, role: "admin", expiresIn: -60 });
    await page.type("[data-testid=token-input]", expired);
    await page.click("[data-testid=signin]");
    await textBecomes("[data-testid=signin-error]", (t) => t.includes("expired"), "an expired token");
  });

  test("signs in from the fragment and follows the socket count live", { timeout: 60_000 }, async () => {
    await page.goto(`${BASE_URL}/console#token=${admin.token}`, { waitUntil: "load" });
    await textBecomes("[data-testid=live-state]", (t) => t === "live", "the /admin socket");
    assert.equal(await page.evaluate(() => location.href.includes("token")), false, "the fragment was cleared");
    assert.equal(await page.evaluate(() => sessionStorage.getItem("cyberhub.console.token")), admin.token);
    await textBecomes("[data-testid=online-sockets]", (t) => t === "0", "nobody connected yet");

    const players = [newUser(), newUser()];
    const sockets = [];
    for (const [i, p] of players.entries()) sockets.push(await connect("websocket", p.token, `player ${i}`));
    sockets.push(await connect("polling", players[0].token, "player 0 again"));
    await textBecomes("[data-testid=online-sockets]", (t) => t === "3", "three sockets connected");
    await textBecomes("[data-testid=online-users]", (t) => t === "2", "two distinct players");

    const paymentId = `console-${Date.now()}`;
    const paid = await sendPayment({ paymentId, userId: players[1].id, amount: 12.5, status: "success" });
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    await textBecomes("[data-testid=payments]", (t) => t.includes(paymentId) && t.includes("12.50"), "the payment, live");
    await shot("overview");

    closeAll();
    await textBecomes("[data-testid=online-sockets]", (t) => t === "0", "the sockets left");

    // A reload keeps the session (sessionStorage) without the fragment.
    await page.reload({ waitUntil: "load" });
    await textBecomes("[data-testid=live-state]", (t) => t === "live", "signed in after a reload");
  });

  test("creates a case, edits it with a live chance preview, reprices and deletes it", { timeout: 60_000 }, async () => {
    await go("cases");
    await page.waitForSelector("[data-testid=case-new]", { visible: true });
    await page.click("[data-testid=case-new]");
    const name = `Console case ${Date.now()}`;
    await setInput("[data-testid=case-name]", name);
    await setInput("[data-testid=case-price]", "1.50");
    await setInput("tr.item:nth-child(1) [data-testid=item-name]", "Two coins");
    await setInput("tr.item:nth-child(1) [data-testid=item-value]", "2");
    await setInput("tr.item:nth-child(1) [data-testid=item-weight]", "3");
    await page.click("[data-testid=item-add]");
    await setInput("tr.item:nth-child(2) [data-testid=item-name]", "AK-47 | Redline");
    await setInput("tr.item:nth-child(2) [name=rarity]", "classified");
    await page.select("tr.item:nth-child(2) [name=kind]", "skin");
    await setInput("tr.item:nth-child(2) [data-testid=item-value]", "10.25");
    await setInput("tr.item:nth-child(2) [data-testid=item-weight]", "1");
    await textBecomes("tr.item:nth-child(1) [data-testid=item-chance]", (t) => t === "75.00 %", "the live preview");
    await textBecomes("tr.item:nth-child(2) [data-testid=item-chance]", (t) => t === "25.00 %", "the live preview");
    await shot("case-editor");
    await page.click("[data-testid=case-save]");
    await textBecomes("[data-testid=case-list]", (t) => t.includes("Console case"), "the new case listed");

    const find = async () => (await apiOk("GET", "/api/cases")).cases.find((c) => c.name === name);
    const created = await find();
    assert.ok(created, "the case exists");
    assert.deepEqual(created.items.map((i) => [i.name, i.weight, i.value]), [["Two coins", 3, 2], ["AK-47 | Redline", 1, 10.25]]);
    assert.equal(created.price, 1.5);

    await page.click(`tr[data-case="${created.id}"] [data-testid=case-edit]`);
    await setInput("tr.item:nth-child(2) [data-testid=item-weight]", "3");
    await textBecomes("tr.item:nth-child(2) [data-testid=item-chance]", (t) => t === "50.00 %", "the preview follows the edit");
    await page.click("[data-testid=case-save]");
    await page.waitForFunction(async (id) => {
      const answer = await fetch(`/api/cases/${id}`).then((r) => r.json());
      return answer.case.items[1].weight === 3;
    }, WAIT, created.id);
    const edited = await find();
    assert.deepEqual(edited.items.map((i) => i.chance), [50, 50]);
    // The list is drawn again after a save: wait for it before typing into it.
    await textBecomes(`tr[data-case="${created.id}"]`, (t) => t.includes("Redline 50.00 %"), "the list after the edit");

    await setInput(`tr[data-case="${created.id}"] [data-testid=price-input]`, "2.50");
    await page.click(`tr[data-case="${created.id}"] [data-testid=price-set]`);
    await textBecomes(`tr[data-case="${created.id}"] [data-testid=case-price-shown]`, (t) => t === "2.50", "the new price");
    assert.equal((await find()).price, 2.5);
    await shot("cases");

    await page.click(`tr[data-case="${created.id}"] [data-testid=case-delete]`);
    await page.click(`tr[data-case="${created.id}"] [data-testid=case-delete]`);
    await page.waitForFunction((id) => !document.querySelector(`tr[data-case="${id}"]`), WAIT, created.id);
    assert.equal(await find(), undefined, "the case was deleted");
  });

  test("settles the withdrawal queue: delivered, and back to owned", { timeout: 60_000 }, async () => {
    const player = newUser();
    await apiOk("GET", "/api/me", { token: player.token });
    const { case: box } = await apiOk("POST", "/api/admin/cases", {
      token: admin.token,
      body: { name: "Withdrawals", price: 1, items: [{ name: "Karambit | Fade", rarity: "covert", kind: "skin", value: 250, weight: 1 }] },
    }, 201);
    await apiOk("POST", "/api/admin/balance/add", { token: admin.token, body: { userId: player.id, amount: 2 } });
    for (let i = 0; i < 2; i++) await apiOk("POST", "/api/cases/open", { token: player.token, body: { caseId: box.id } });
    const { items } = await apiOk("GET", "/api/inventory", { token: player.token });
    const ids = items.map((i) => i.id);
    assert.equal(ids.length, 2);
    for (const id of ids) {
      await apiOk("PUT", `/api/inventory/${id}/status`, { token: admin.token, body: { status: "withdraw_requested" } });
    }

    await go("withdrawals");
    for (const id of ids) await page.waitForSelector(`tr[data-item="${id}"]`, WAIT);
    await shot("withdrawals");
    await page.click(`tr[data-item="${ids[0]}"] [data-testid=withdrawal-delivered]`);
    await page.waitForFunction((id) => !document.querySelector(`tr[data-item="${id}"]`), WAIT, ids[0]);
    await page.click(`tr[data-item="${ids[1]}"] [data-testid=withdrawal-owned]`);
    await page.waitForFunction((id) => !document.querySelector(`tr[data-item="${id}"]`), WAIT, ids[1]);

    const after = (await apiOk("GET", "/api/inventory", { token: player.token })).items;
    const status = Object.fromEntries(after.map((i) => [i.id, i.status]));
    assert.deepEqual(status, { [ids[0]]: "delivered", [ids[1]]: "owned" });
  });

  test("shows a player, kicks their session away, blocks and unblocks them", { timeout: 60_000 }, async () => {
    const player = newUser();
    await apiOk("GET", "/api/me", { token: player.token });
    await apiOk("POST", "/api/admin/balance/add", { token: admin.token, body: { userId: player.id, amount: 7.25, reason: "tournament" } });
    const { case: box } = await apiOk("POST", "/api/admin/cases", {
      token: admin.token,
      body: { name: "Starter", price: 1.5, items: [
        { name: "2 coins", rarity: "common", kind: "money", value: 2, weight: 3 },
        { name: "AWP | Asiimov", rarity: "covert", kind: "skin", value: 40, weight: 1 },
      ] },
    }, 201);
    for (let i = 0; i < 3; i++) await apiOk("POST", "/api/cases/open", { token: player.token, body: { caseId: box.id } });
    const socket = await connect("websocket", player.token, "the player");
    await waitFor(socket, `balance:updated:${player.id}`);
    const sid = socket.id;

    await go(`player/${player.id}`);
    await textBecomes("[data-testid=player-balance]", (t) => t === "2.75", "the balance");
    await textBecomes("[data-testid=ledger]", (t) => t.includes("admin_add") && t.includes("tournament") && t.includes("case_open"), "the ledger");
    // The inventory loads beside the ledger, not after it.
    await page.waitForFunction(() => document.querySelectorAll("[data-testid=inventory] tr:not(.empty)").length === 3, WAIT);
    await page.waitForSelector("[data-testid=sessions] tr[data-socket]", WAIT);
    assert.equal(await page.$$eval("[data-testid=sessions] tr[data-socket]", (rows) => rows.length), 1);
    await shot("player");

    const ended = waitFor(socket, "session:ended");
    await page.click("[data-testid=player-kick]");
    assert.deepEqual(await ended, { reason: "kicked" });
    await page.waitForFunction(() => !document.querySelector("[data-testid=sessions] tr[data-socket]"), WAIT);
    assert.ok(sid, "the socket had an id");

    await page.click("[data-testid=player-block]");
    await textBecomes("[data-testid=player-blocked]", (t) => t === "blocked", "blocked");
    const refused = await api("GET", "/api/me", { token: player.token });
    assert.equal(refused.status, 403);
    await page.click("[data-testid=player-block]");
    await textBecomes("[data-testid=player-blocked]", (t) => t === "allowed", "unblocked");
    await apiOk("GET", "/api/me", { token: player.token });

    // A retired pair, so the history shows a revealed seed next to the active one.
    await apiOk("POST", "/api/fair/rotate", { token: player.token, body: {} });
    await page.click("[data-testid=player-fair]");
    await page.waitForSelector("[data-testid=fair-list] tr td.mono", WAIT);
    assert.equal(await page.evaluate(() => location.hash), `#fair/${player.id}`);
    assert.equal(await page.$$eval("[data-testid=fair-list] tr", (rows) => rows.length), 2, "the active pair and the retired one");
    await shot("fair");
  });

  test("signing out forgets the token; a pasted one signs in again", { timeout: 30_000 }, async () => {
    await page.click("#signout");
    await page.waitForSelector("[data-testid=token-input]", { visible: true });
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    await setInput("[data-testid=token-input]", admin.token);
    await page.click("[data-testid=signin]");
    await textBecomes("[data-testid=live-state]", (t) => t === "live", "signed in with a pasted token");
    await go("overview");
    await textBecomes("[data-testid=bus]", (t) => t === "disabled", "the bus state of a single node");
  });
});
