/// <reference lib="dom" />
// page.evaluate() callbacks run in the browser: the DOM types are theirs.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually } from "@ponte/common/testing";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { evmAddresses, startStack, stockAddressPool, type Stack } from "../harness/stack.js";

// The gateway's web page in headless Chromium against the real stack: sign in with a JWT, the
// user's trades with live status, one trade's audit log.
const CHROMIUM = "/usr/bin/chromium";
// shared/ENVIRONMENT.md: what Debian's chromium needs to run headless here, offline.
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
const SCREENSHOT = "/tmp/ponte-web.png";
const refund = "0x8ba1f109551bD432803012645Ac136ddd64DBA72";

let s: Stack;
let profile: string;
let browser: BrowserContext;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  s = await startStack();
  await stockAddressPool(s, "anvil", evmAddresses(10));
  profile = mkdtempSync(join(tmpdir(), "ponte-chromium-"));
  browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS });
  page = browser.pages()[0] ?? (await browser.newPage());
  // A CSP violation or a script error shows up here; the page must have none.
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(String(e)));
});
afterAll(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await s?.stop();
});

async function newTrade(user: string, crypto_amount: string) {
  const token = s.token(user);
  const q = await s.api("/api/v1/instant-trade/quote", { token, body: { symbol: "USDT", network: "anvil", crypto_amount } });
  expect(q.status).toBe(200);
  const c = await s.api("/api/v1/instant-trade/create", {
    token,
    body: { quote_id: q.body.quote_id, refund_address: refund },
    headers: { "idempotency-key": `k-${q.body.quote_id}` },
  });
  expect(c.status).toBe(201);
  return c.body as { id: string; deposit_address: string; fiat_amount: string; crypto_amount: string };
}

const row = (id: string) => page.locator(`tr[data-trade-id="${id}"]`);
const text = async (selector: string) => ((await page.locator(selector).textContent()) ?? "").trim();

describe("the web page at /", () => {
  it("signs in with a JWT, lists the user's trades, and shows a cancel live", async () => {
    const older = await newTrade("u-web", "10");
    const newer = await newTrade("u-web", "20.5");
    const foreign = await newTrade("u-web-other", "30");

    await page.goto(`${s.gatewayUrl}/`);
    expect(await page.title()).toContain("Ponte");
    await page.getByLabel("Development JWT").fill(s.token("u-web"));
    await page.getByRole("button", { name: "Sign in" }).click();

    await row(newer.id).waitFor();
    expect(await page.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-trade-id")))).toEqual([newer.id, older.id]);
    expect(await row(foreign.id).count()).toBe(0);
    expect(await row(newer.id).locator('[data-field="status"]').textContent()).toBe("PENDING");
    expect(await row(newer.id).textContent()).toContain("20.5 USDT");
    expect(await text("#who")).toContain("u-web");
    // The token stays in this tab's session storage, nowhere else.
    expect(await page.evaluate(() => [sessionStorage.length, localStorage.length, document.cookie])).toEqual([1, 0, ""]);

    // Both trades are open, so both are followed live.
    await eventually(async () => expect(await row(older.id).locator('[data-field="live"]').textContent()).toContain("live"));
    await page.evaluate(() => Object.assign(window, { notReloaded: true }));

    const cancel = await s.api(`/api/v1/instant-trade/${older.id}/cancel`, { token: s.token("u-web"), method: "POST" });
    expect(cancel.status).toBe(200);
    await eventually(async () => expect(await row(older.id).locator('[data-field="status"]').textContent()).toBe("CANCELLED"));
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    expect(await text("#announcer")).toBe(`Trade ${older.id} is now CANCELLED.`);
    // A final trade is no longer followed (the page closed its EventSource instead of reconnecting).
    await eventually(async () => expect(await row(older.id).locator('[data-field="live"]').textContent()).toBe(""));
    expect(await row(newer.id).locator('[data-field="status"]').textContent()).toBe("PENDING");
  });

  it("opens a trade: amounts, deposit address, payout fields and the audit log as a timeline, updated live", async () => {
    const t = await newTrade("u-web", "42");
    await page.getByRole("button", { name: "Refresh" }).click();
    await row(t.id).waitFor();
    await page.getByRole("button", { name: `Open trade ${t.id}` }).click();

    await eventually(async () => expect(await text('#facts [data-field="deposit_address"]')).toBe(t.deposit_address));
    expect(await text('#facts [data-field="crypto_amount"]')).toBe("42 USDT on anvil");
    expect(await text('#facts [data-field="fiat_amount"]')).toBe(`R$ ${t.fiat_amount}`);
    expect(await text('#facts [data-field="payout_status"]')).toBe("—");
    expect(await text('#facts [data-field="payout_end_to_end_id"]')).toBe("—");
    expect(await page.locator("#audit-log li").count()).toBe(1);
    expect(await text("#audit-log li .what")).toBe("created → PENDING");

    // An admin confirms (with markup in the reason): the timeline grows live and shows the text as text.
    await s.sql`UPDATE instant_trades SET status = 'DEPOSIT_DETECTED', version = version + 1, updated_at = now() WHERE id = ${t.id}`;
    const reason = `checked <img src=x id=injected> & "ok"`;
    const confirm = await s.api(`/api/v1/instant-trade/${t.id}/confirm-payment`, { token: s.adminToken("ops-web"), body: { reason } });
    expect(confirm.status).toBe(200);
    await eventually(async () => expect(await page.locator("#audit-log li").count()).toBe(2));
    await eventually(async () => expect(await text('#facts [data-field="status"]')).toBe("PAYMENT_CONFIRMED"));
    const last = page.locator("#audit-log li").nth(1);
    expect(await last.locator(".what").textContent()).toBe("DEPOSIT_DETECTED → PAYMENT_CONFIRMED");
    expect(await last.textContent()).toContain("by admin:ops-web");
    expect(await last.textContent()).toContain(`“${reason}”`);
    expect(await page.locator("#injected").count()).toBe(0);
    expect(await row(t.id).locator('[data-field="status"]').textContent()).toBe("PAYMENT_CONFIRMED");

    await page.setViewportSize({ width: 1280, height: 900 });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  it("keeps the token across a reload, signs out on request, and raised no script or CSP error", async () => {
    await page.reload();
    await page.locator("tbody tr").first().waitFor();
    await page.getByRole("button", { name: "Sign out" }).click();
    expect(await page.locator("#workspace").isHidden()).toBe(true);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

    await page.getByLabel("Development JWT").fill("not-a-jwt");
    await page.getByRole("button", { name: "Sign in" }).click();
    expect(await text("#alert")).toContain("does not look like a JWT");
    expect(problems).toEqual([]);
  });
});
