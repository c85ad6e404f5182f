// The Stark Bank adapter against the stand-in, over real HTTP.
import { generateKeyPairSync } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PonteError } from "@ponte/common";
import { eventually } from "@ponte/common/testing";
import {
  ProviderAmbiguousError,
  ProviderAuthError,
  ProviderRejectedError,
  WebhookVerificationError,
} from "../errors.js";
import type { KeyOwner, PayoutWebhookEvent, PixProvider } from "../types.js";
import { createStarkbankProvider, starkbankOptionsFromEnv, type StarkbankProviderOptions } from "./index.js";

// The stand-in lives in the test package, which depends on the coordinator; importing it by a
// computed path keeps the coordinator free of a (cyclic) dependency on it, at the price of the
// small hand-written type below.
interface Standin {
  url: string;
  admin: {
    reset(): Promise<unknown>;
    seedKeys(keys: unknown[]): Promise<unknown>;
    setWebhookUrl(url: string | null): Promise<unknown>;
    configure(c: Record<string, unknown>): Promise<unknown>;
    addFault(spec: Record<string, unknown>): Promise<unknown>;
    transfers(): Promise<{
      transfers: { id: string; externalId: string | null; amount: number }[];
      byExternalId: Record<string, { transfers: number; createAttempts: number; status: string | null }>;
      totals: Record<string, number | string>;
    }>;
    requests(): Promise<Record<string, number>>;
    emitEvent(o: { transferId: string; type?: string; created?: string; deliver?: boolean }): Promise<{ id: string; body: string; signature: string }>;
    rotateKey(): Promise<string>;
    sign(body: string): Promise<string>;
  };
  close(): Promise<void>;
}
interface StandinModule {
  startStarkbankStandin(o: Record<string, unknown>): Promise<Standin>;
  generateKeyPair(): { privateKeyPem: string; publicKeyPem: string };
}
const standinUrl = new URL("../../../../../test/src/standins/starkbank/index.ts", import.meta.url).href;
const { startStarkbankStandin, generateKeyPair } = (await import(/* @vite-ignore */ standinUrl)) as StandinModule;

const PROJECT = "4848484848484848";
const projectKey = generateKeyPair();
const CPF = "12345678909";
const CNPJ = "11222333000181";
const ANA = {
  key: "ana@example.com",
  type: "email",
  name: "Ana Souza",
  taxId: CPF,
  ispb: "18236120",
  bankName: "Nu Pagamentos",
  branchCode: "0001",
  accountNumber: "123456-7",
  accountType: "payment",
};
const ACME = { key: CNPJ, type: "cnpj", name: "Acme Ltda", taxId: CNPJ, ispb: "00000000", branchCode: "1234", accountNumber: "99887-0" };
const BRUNO = { key: "+5511987654321", type: "phone", name: "Bruno Lima", taxId: "52998224725", accountNumber: "555-5", outcome: "failed" };

const logger = pino({ level: "silent" });
let standin: Standin;
let receiver: Server;
let hooks: { body: string; headers: IncomingHttpHeaders }[] = [];
let seq = 0;
const key = (p: string) => `${p}_${Date.now().toString(36)}_${seq++}`;

function provider(over: Partial<StarkbankProviderOptions> = {}): PixProvider {
  return createStarkbankProvider(
    { logger },
    { baseUrl: standin.url, accessId: `project/${PROJECT}`, privateKeyPem: projectKey.privateKeyPem, timeoutMs: 2_000, ...over },
  );
}

async function payout(p: PixProvider, ourKey: string, amount = 12_345n, owner?: KeyOwner, holderTaxId = CPF) {
  const keyOwner = owner ?? (await p.resolveKey(ANA.key));
  return p.createPayout({ ourKey, amountCentavos: amount, pixKey: keyOwner.key, keyOwner, holderTaxId });
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      hooks.push({ body: Buffer.concat(chunks).toString("utf8"), headers: req.headers });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  standin = await startStarkbankStandin({
    projects: [{ id: PROJECT, publicKeyPem: projectKey.publicKeyPem }],
    keys: [ANA, ACME, BRUNO],
    webhookUrl: `http://127.0.0.1:${(receiver.address() as { port: number }).port}/`,
    processingDelayMs: 20,
    settleDelayMs: 40,
    webhookRetryBaseMs: 10,
  });
});

afterEach(async () => {
  await standin.admin.reset();
  hooks = [];
});

afterAll(async () => {
  await standin?.close();
  await new Promise((r) => receiver.close(r));
});

describe("resolveKey", () => {
  it("returns the holder with the CPF masked as the DICT shows it", async () => {
    const owner = await provider().resolveKey(ANA.key);
    expect(owner).toEqual({
      key: ANA.key,
      keyType: "email",
      holderName: "Ana Souza",
      taxId: "***.456.789-**",
      taxIdMasked: true,
      ownerType: "natural",
      ispb: "18236120",
      bankName: "Nu Pagamentos",
      branch: "0001",
      account: "123456-7",
      accountType: "payment",
    });
    expect(await provider().resolveKey(CNPJ)).toMatchObject({ taxId: "11.222.333/0001-81", taxIdMasked: false, ownerType: "legal" });
  });

  it("says PIX_KEY_NOT_FOUND for a key nobody holds", async () => {
    await expect(provider().resolveKey("nobody@example.com")).rejects.toMatchObject({ code: "PIX_KEY_NOT_FOUND" });
  });
});

describe("createPayout / getPayout", () => {
  it("creates, reads back by our key, follows the status to success", async () => {
    const p = provider();
    const k = key("pay");
    const created = await payout(p, k);
    expect(created).toMatchObject({ provider: "starkbank", ourKey: k, amountCentavos: 12_345n, status: "created" });
    expect(created.destination).toMatchObject({ taxId: CPF, bankCode: "18236120", branch: "0001", account: "123456-7" });
    expect(created.tags).toContain(`ponte-payout/${k.toLowerCase()}`);

    expect((await p.getPayout(k))?.providerId).toBe(created.providerId);
    await eventually(async () => {
      const now = await p.getPayout(k);
      expect(now).toMatchObject({ status: "success", providerStatus: "success" });
      expect(now?.endToEndId).toMatch(/^E18236120/);
    });
  });

  it("is idempotent on our key: a repeat returns the first payout and the stand-in pays once", async () => {
    const p = provider();
    const k = key("idem");
    const first = await payout(p, k);
    const again = await payout(p, k);
    expect(again.providerId).toBe(first.providerId);
    const s = await standin.admin.transfers();
    expect(s.byExternalId[k]).toMatchObject({ transfers: 1, createAttempts: 2 });
    expect(s.totals.count).toBe(1);
  });

  it("refuses to reuse a key for a different amount", async () => {
    const p = provider();
    const k = key("reuse");
    await payout(p, k, 100n);
    await expect(payout(p, k, 200n)).rejects.toMatchObject({ code: "IDEMPOTENCY_KEY_REUSED" });
    expect((await standin.admin.transfers()).totals.count).toBe(1);
  });

  it("returns null for a key the provider never saw", async () => {
    expect(await provider().getPayout(key("none"))).toBeNull();
  });

  it("checks the payee's document against the masked DICT one before any call", async () => {
    const p = provider();
    const owner = await p.resolveKey(ANA.key);
    const k = key("mismatch");
    await expect(payout(p, k, 100n, owner, "52998224725")).rejects.toMatchObject({ code: "HOLDER_DOCUMENT_MISMATCH" });
    expect((await standin.admin.transfers()).byExternalId[k]).toBeUndefined();
  });

  it("reports a definitive rejection as ProviderRejectedError", async () => {
    const p = provider();
    await standin.admin.addFault({ kind: "reject", code: "insufficientBalance" });
    const err = await payout(p, key("rej")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderRejectedError);
    expect((err as ProviderRejectedError).providerErrors[0]?.code).toBe("insufficientBalance");
    expect((err as ProviderRejectedError).retryable).toBe(false);
  });

  it("reports a failed payout with the provider's reason", async () => {
    const p = provider();
    const owner = await p.resolveKey(BRUNO.key);
    const k = key("fail");
    await payout(p, k, 500n, owner, BRUNO.taxId);
    await eventually(async () => expect(await p.getPayout(k)).toMatchObject({ status: "failed", failureReason: "Receiver account rejected the transfer" }));
  });

  it("sees a return (chargeback) after success", async () => {
    const p = provider();
    const k = key("ret");
    await standin.admin.addFault({ kind: "return", externalId: k, delayMs: 30 });
    await payout(p, k);
    await eventually(async () => expect((await p.getPayout(k))?.status).toBe("returned"));
  });

  it("lists the payouts created in a window", async () => {
    const p = provider();
    const from = new Date(Date.now() - 1_000);
    const keys = [key("list"), key("list"), key("list")];
    for (const k of keys) await payout(p, k);
    const listed = await p.listPayouts(from, new Date(Date.now() + 1_000));
    expect(listed.map((x) => x.ourKey).sort()).toEqual([...keys].sort());
    expect(await p.listPayouts(new Date(Date.now() - 86_400_000), from)).toEqual([]);
  });
});

describe("ambiguous outcomes", () => {
  it("a 500 before anything happened: ambiguous; getPayout says none; the same key then pays once", async () => {
    const p = provider();
    const k = key("h500");
    await standin.admin.addFault({ kind: "http500", route: "create" });
    const err = await payout(p, k).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderAmbiguousError);
    expect((err as ProviderAmbiguousError).retryable).toBe(true);
    expect((err as ProviderAmbiguousError).code).toBe("UNAVAILABLE");
    expect(await p.getPayout(k)).toBeNull();
    await payout(p, k);
    expect((await standin.admin.transfers()).byExternalId[k]).toMatchObject({ transfers: 1, createAttempts: 2 });
  });

  it("a 500 after the transfer was accepted: ambiguous; getPayout finds it; resending the key does not pay twice", async () => {
    const p = provider();
    const k = key("h500a");
    await standin.admin.addFault({ kind: "http500_after_accept", externalId: k });
    await expect(payout(p, k)).rejects.toBeInstanceOf(ProviderAmbiguousError);
    const found = await p.getPayout(k);
    expect(found?.ourKey).toBe(k);
    expect((await payout(p, k)).providerId).toBe(found?.providerId);
    expect((await standin.admin.transfers()).byExternalId[k]).toMatchObject({ transfers: 1, createAttempts: 2 });
  });

  it("a timeout after the transfer was accepted: ambiguous with reason timeout; resolved by getPayout", async () => {
    const p = provider({ timeoutMs: 300 });
    const k = key("tmo");
    await standin.admin.addFault({ kind: "timeout_after_accept", delayMs: 5_000 });
    const err = await payout(p, k).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderAmbiguousError);
    expect((err as ProviderAmbiguousError).details).toMatchObject({ reason: "timeout", op: "create_transfer" });
    expect((await p.getPayout(k))?.ourKey).toBe(k);
  });

  it("a reset connection is ambiguous too, and reads report unavailable (retryable)", async () => {
    const p = provider({ baseUrl: "http://127.0.0.1:9" });
    const owner = { ...(await provider().resolveKey(ANA.key)) };
    await expect(payout(p, key("down"), 1n, owner)).rejects.toBeInstanceOf(ProviderAmbiguousError);
    const read = await p.getPayout("any").catch((e: unknown) => e);
    expect(read).toMatchObject({ code: "UNAVAILABLE", retryable: true });
    expect(read).not.toBeInstanceOf(ProviderAmbiguousError);
  });

  it("refused credentials are ProviderAuthError and create nothing", async () => {
    const p = provider({ privateKeyPem: generateKeyPair().privateKeyPem });
    const owner = await provider().resolveKey(ANA.key);
    const k = key("auth");
    const err = await payout(p, k, 100n, owner).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderAuthError);
    expect((err as PonteError).code).toBe("PROVIDER_AUTH_FAILED");
    const s = await standin.admin.transfers();
    expect(s.totals.count).toBe(0);
    expect(s.byExternalId[k]).toBeUndefined(); // refused before the body was even read
  });
});

describe("verifyWebhook", () => {
  const verified = async (p: PixProvider, i: number) => {
    const h = hooks[i]!;
    return p.verifyWebhook(h.body, h.headers as Record<string, string | string[] | undefined>);
  };

  it("verifies the stand-in's signed webhooks and reads the payout status from them", async () => {
    const p = provider();
    const k = key("hook");
    const created = await payout(p, k);
    await eventually(() => expect(hooks.length).toBe(3));
    const events = await Promise.all(hooks.map((_, i) => verified(p, i)));
    expect(events.map((e) => (e as PayoutWebhookEvent).status)).toEqual(["created", "processing", "success"]);
    expect(events[2]).toMatchObject({ type: "payout", ourKey: k, providerId: created.providerId, providerEventType: "success" });
    expect(new Set(events.map((e) => e.eventId)).size).toBe(3);
  });

  it("refuses a forged body, a missing signature and a garbage signature", async () => {
    const p = provider({ publicKeyMinRefetchMs: 0 });
    await payout(p, key("forge"));
    await eventually(() => expect(hooks.length).toBeGreaterThan(0));
    const h = hooks[0]!;
    const sig = h.headers["digital-signature"] as string;
    const forged = h.body.replace(/"amount":\d+/, '"amount":99999999');
    await expect(p.verifyWebhook(forged, { "Digital-Signature": sig })).rejects.toMatchObject({ code: "WEBHOOK_SIGNATURE_INVALID" });
    await expect(p.verifyWebhook(h.body, {})).rejects.toMatchObject({ code: "WEBHOOK_SIGNATURE_INVALID", details: { reason: "missing_signature" } });
    await expect(p.verifyWebhook(h.body, { "digital-signature": "bm90IGEgc2lnbmF0dXJl" })).rejects.toBeInstanceOf(WebhookVerificationError);
    expect((await p.verifyWebhook(h.body, { "digital-signature": sig })).eventId).toBeTruthy();
  });

  it("refuses a correctly signed but stale event, and one from the future", async () => {
    const p = provider();
    await payout(p, key("stale"));
    const [t] = (await standin.admin.transfers()).transfers;
    const old = await standin.admin.emitEvent({ transferId: t!.id, created: new Date(Date.now() - 2 * 3_600_000).toISOString(), deliver: false });
    await expect(p.verifyWebhook(old.body, { "digital-signature": old.signature })).rejects.toMatchObject({
      code: "WEBHOOK_STALE",
      details: { reason: "too_old" },
    });
    const future = await standin.admin.emitEvent({ transferId: t!.id, created: new Date(Date.now() + 3_600_000).toISOString(), deliver: false });
    await expect(p.verifyWebhook(future.body, { "digital-signature": future.signature })).rejects.toMatchObject({ code: "WEBHOOK_STALE" });
    const fresh = await standin.admin.emitEvent({ transferId: t!.id, deliver: false });
    expect(await p.verifyWebhook(fresh.body, { "digital-signature": fresh.signature })).toMatchObject({ type: "payout" });
  });

  it("fetches the public key once, and again once after a rotation", async () => {
    const p = provider({ publicKeyMinRefetchMs: 0 });
    await payout(p, key("rot"));
    const [t] = (await standin.admin.transfers()).transfers;
    const before = await standin.admin.emitEvent({ transferId: t!.id, deliver: false });
    await p.verifyWebhook(before.body, { "digital-signature": before.signature });
    await p.verifyWebhook(before.body, { "digital-signature": before.signature });
    expect((await standin.admin.requests())["GET /v2/public-key"]).toBe(1);

    await standin.admin.rotateKey();
    const after = await standin.admin.emitEvent({ transferId: t!.id, deliver: false });
    expect(await p.verifyWebhook(after.body, { "digital-signature": after.signature })).toMatchObject({ type: "payout" });
    expect((await standin.admin.requests())["GET /v2/public-key"]).toBe(2);
    // The old key's signatures no longer verify.
    await expect(p.verifyWebhook(before.body, { "digital-signature": before.signature })).rejects.toMatchObject({
      code: "WEBHOOK_SIGNATURE_INVALID",
    });
  });

  it("does not refetch the key for every forged request", async () => {
    const p = provider({ publicKeyMinRefetchMs: 60_000 });
    const body = JSON.stringify({ event: { id: "1", created: new Date().toISOString(), subscription: "transfer", log: { id: "2", type: "x" } } });
    const bogus = "MEUCIQDx0Jc9v1Xv2f0n8r1vYp3m9Z2Bq5e8m7gkq8xkJ9m1XwIgQ0w1b3Zx4y5z6A7B8C9D0E1F2G3H4I5J6K7L8M9N0O1P2Q=";
    for (let i = 0; i < 5; i++) await expect(p.verifyWebhook(body, { "digital-signature": bogus })).rejects.toBeInstanceOf(WebhookVerificationError);
    expect((await standin.admin.requests())["GET /v2/public-key"]).toBe(1);
  });

  it("refuses events from another workspace when one is configured", async () => {
    const p = provider({ workspaceId: "1234" });
    await payout(p, key("ws"));
    const [t] = (await standin.admin.transfers()).transfers;
    const ev = await standin.admin.emitEvent({ transferId: t!.id, deliver: false });
    await expect(p.verifyWebhook(ev.body, { "digital-signature": ev.signature })).rejects.toMatchObject({
      code: "WEBHOOK_SIGNATURE_INVALID",
      details: { reason: "foreign_workspace" },
    });
  });

  it("acknowledges verified events of other subscriptions as 'other'", async () => {
    const p = provider();
    const body = JSON.stringify({
      event: { id: "777", created: new Date().toISOString(), subscription: "deposit", workspaceId: "1", log: { id: "8", type: "credited", errors: [] } },
    });
    const sig = await standin.admin.sign(body);
    expect(await p.verifyWebhook(body, { "Digital-Signature": sig })).toMatchObject({ type: "other", eventId: "777", subscription: "deposit" });
  });
});

describe("starkbankOptionsFromEnv", () => {
  it("builds the options from the environment and names every missing field", () => {
    const o = starkbankOptionsFromEnv({
      STARKBANK_BASE_URL: "https://sandbox.api.starkbank.com",
      STARKBANK_PROJECT_ID: PROJECT,
      STARKBANK_PRIVATE_KEY: projectKey.privateKeyPem.replace(/\n/g, "\\n"),
    });
    expect(o).toMatchObject({ accessId: `project/${PROJECT}`, timeoutMs: 15_000, webhookMaxAgeMs: 3_600_000 });
    // A one-line PEM with literal \n escapes still loads.
    expect(() => createStarkbankProvider({ logger }, o)).not.toThrow();
    expect(() => starkbankOptionsFromEnv({})).toThrow(/STARKBANK_BASE_URL[\s\S]*STARKBANK_PROJECT_ID[\s\S]*STARKBANK_PRIVATE_KEY/);
  });

  it("refuses a key on another curve", () => {
    const p256 = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey.export({ type: "sec1", format: "pem" }).toString();
    expect(() => provider({ privateKeyPem: p256 })).toThrow(/secp256k1/);
  });
});
