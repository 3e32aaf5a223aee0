// cyberhub-client in headless Chromium (Debian's `chromium`, driven by puppeteer-core): a page
// served by this test loads the package with an import map, connects, shows a balance changed
// over HTTP, opens a case and verifies its fairness proof in the page.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

import { BASE_URL, credit, moneyCase, token } from "../support.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const served = {
  "/dist/": join(root, "dist"),
  "/test/browser/": join(root, "test/browser"),
  "/vendor/socket.io-client/": join(root, "node_modules/socket.io-client/dist"),
};
const types = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".map": "application/json" };

let server;
let browser;
let profile;
const problems = [];

before(async () => {
  server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://page").pathname);
    const prefix = Object.keys(served).find((p) => path.startsWith(p));
    const file = prefix && normalize(join(served[prefix], path.slice(prefix.length)));
    if (!file || !file.startsWith(served[prefix])) return res.writeHead(404).end();
    try {
      const body = readFileSync(file);
      res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  profile = mkdtempSync(join(tmpdir(), "cyberhub-client-chromium-"));
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    userDataDir: profile,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
  server?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test("in Chromium: connect, see a balance change made over HTTP, open a case and verify it", { timeout: 60_000 }, async () => {
  const page = await browser.newPage();
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => msg.type() === "error" && problems.push(`console: ${msg.text()}`));
  page.on("requestfailed", (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));

  const id = randomUUID();
  const { port } = server.address();
  const query = new URLSearchParams({ server: BASE_URL(), token: token({ sub: id }) });
  await page.goto(`http://127.0.0.1:${port}/test/browser/index.html?${query}`);
  const text = (selector) => page.$eval(selector, (el) => el.textContent);
  const shows = (selector, value) =>
    page
      .waitForFunction((s, v) => document.querySelector(s)?.textContent === v, { timeout: 10_000 }, selector, value)
      .catch(async (err) => {
        throw new Error(`${selector} never showed ${value} (shows ${await text(selector)}; ${problems.join("; ")})`, { cause: err });
      });

  await shows("#status", "connected");
  await shows("#balance", "0.00");
  assert.equal(await page.evaluate(() => window.hub.socket.io.engine.transport.name), "websocket");

  await credit(id, 7.5);
  await shows("#balance", "7.50");

  const kase = await moneyCase(0.5, 0.25);
  const { balance, balanceVersion, proof } = await page.evaluate((caseId) => window.openAndVerify(caseId), kase.id);
  assert.equal(proof.verified, true, JSON.stringify(proof));
  assert.deepEqual(proof.problems, []);
  assert.equal(await text("#proof"), "verified");
  assert.equal(balanceVersion, 2);
  await shows("#balance", balance.toFixed(2));

  const versions = await page.evaluate(() => window.seenVersions);
  assert.deepEqual(versions, [...new Set(versions)].sort((a, b) => a - b), `versions only went up: ${versions}`);
  assert.equal(versions.at(-1), 2);
  assert.deepEqual(problems, []);
  await page.close();
});
