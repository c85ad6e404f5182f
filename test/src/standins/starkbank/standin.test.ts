// The stand-in on its own, driven by raw signed HTTP: what a Stark Bank client would see.
import { createServer, type Server } from "node:http";
import { createPublicKey, verify } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "@ponte/common/testing";
import { generateKeyPair, signedHeaders, startStarkbankStandin, type StarkbankStandin } from "./index.js";

const PROJECT = "5656565656565656";
const ACCESS_ID = `project/${PROJECT}`;
const client = generateKeyPair();
const CPF = "12345678909";
const HOLDER = {
  key: "ana@example.com",
  type: "email" as const,
  name: "Ana Souza",
  taxId: CPF,
  ispb: "18236120",
  branchCode: "0001",
  accountNumber: "123456-7",
  accountType: "payment",
};

interface Received {
  body: string;
  signature: string | undefined;
}

let standin: StarkbankStandin;
let receiver: Server;
let received: Received[] = [];

async function api(method: "GET" | "POST", path: string, body?: unknown, key = client.privateKey) {
  const raw = body === undefined ? "" : JSON.stringify(body);
  const res = await fetch(standin.url + path, {
    method,
    headers: { ...signedHeaders(ACCESS_ID, key, raw), "Content-Type": "application/json" },
    body: method === "POST" ? raw : undefined,
  });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

const transfer = (externalId: string, amount = 1000) => ({
  amount,
  name: HOLDER.name,
  taxId: CPF,
  bankCode: HOLDER.ispb,
  branchCode: HOLDER.branchCode,
  accountNumber: HOLDER.accountNumber,
  accountType: "payment",
  externalId,
  tags: [`Ponte-Payout/${externalId}`],
});

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ body: Buffer.concat(chunks).toString("utf8"), signature: req.headers["digital-signature"] as string | undefined });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  const addr = receiver.address() as { port: number };
  standin = await startStarkbankStandin({
    projects: [{ id: PROJECT, publicKeyPem: client.publicKeyPem }],
    keys: [HOLDER],
    webhookUrl: `http://127.0.0.1:${addr.port}/`,
    processingDelayMs: 10,
    settleDelayMs: 20,
    webhookRetryBaseMs: 10,
  });
});

afterEach(async () => {
  await standin.admin.reset();
  await standin.admin.configure({ autoAdvance: true });
  received = [];
});

afterAll(async () => {
  await standin?.close();
  await new Promise((r) => receiver.close(r));
});

const eventsFor = (externalId: string) =>
  received
    .map((r) => ({ ...r, event: (JSON.parse(r.body) as { event: { id: string; log: { type: string; transfer: { externalId: string } } } }).event }))
    .filter((r) => r.event.log.transfer.externalId === externalId);

describe("request authentication", () => {
  it("accepts a request signed by the registered project key", async () => {
    const r = await api("GET", "/v2/public-key?limit=1");
    expect(r.status).toBe(200);
    expect(r.json.publicKeys[0].content).toContain("BEGIN PUBLIC KEY");
  });

  it("refuses a request signed with another key, an unknown project or an old Access-Time", async () => {
    const other = generateKeyPair();
    expect((await api("GET", "/v2/public-key", undefined, other.privateKey)).status).toBe(401);

    const unknown = await fetch(`${standin.url}/v2/public-key`, { headers: signedHeaders("project/1", client.privateKey, "") });
    expect(unknown.status).toBe(401);

    const old = await fetch(`${standin.url}/v2/public-key`, {
      headers: signedHeaders(ACCESS_ID, client.privateKey, "", Date.now() / 1000 - 3600),
    });
    expect(old.status).toBe(401);
    expect(((await old.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe("invalidAccessTime");
  });

  it("refuses a body other than the one signed", async () => {
    const signedFor = JSON.stringify({ transfers: [transfer("ext-a")] });
    const res = await fetch(`${standin.url}/v2/transfer`, {
      method: "POST",
      headers: signedHeaders(ACCESS_ID, client.privateKey, signedFor),
      body: JSON.stringify({ transfers: [transfer("ext-a", 999_999)] }),
    });
    expect(res.status).toBe(401);
    expect((await standin.admin.transfers()).totals.count).toBe(0);
  });
});

describe("transfers", () => {
  it("creates, lowercases tags, refuses a repeated externalId and counts both attempts", async () => {
    const first = await api("POST", "/v2/transfer", { transfers: [transfer("ext-1")] });
    expect(first.status).toBe(200);
    expect(first.json.transfers[0]).toMatchObject({ status: "created", externalId: "ext-1", tags: ["ponte-payout/ext-1"] });

    const again = await api("POST", "/v2/transfer", { transfers: [transfer("ext-1")] });
    expect(again.status).toBe(400);
    expect(again.json.errors[0].code).toBe("invalidExternalId");

    const s = await standin.admin.transfers();
    expect(s.totals.count).toBe(1);
    expect(s.byExternalId["ext-1"]).toMatchObject({ transfers: 1, createAttempts: 2 });
  });

  it("moves created → processing → success and signs every webhook with the published key", async () => {
    const { json } = await api("POST", "/v2/transfer", { transfers: [transfer("ext-2")] });
    const id = json.transfers[0].id as string;
    await eventually(() => expect(eventsFor("ext-2").map((e) => e.event.log.type)).toEqual(["created", "processing", "success"]));

    const t = (await api("GET", `/v2/transfer/${id}`)).json.transfer;
    expect(t.status).toBe("success");
    expect(t.metadata.authentication).toMatch(/^E18236120\d{12}\w{11}$/);

    const pem = (await api("GET", "/v2/public-key")).json.publicKeys[0].content as string;
    for (const r of eventsFor("ext-2")) {
      expect(verify("sha256", Buffer.from(r.body), { key: createPublicKey(pem), dsaEncoding: "der" }, Buffer.from(r.signature!, "base64"))).toBe(true);
    }
    expect((await standin.admin.transfers()).totals).toMatchObject({ success: 1, paidCentavos: "1000" });
  });

  it("finds transfers by tag and pages with a cursor", async () => {
    for (let i = 0; i < 5; i++) expect((await api("POST", "/v2/transfer", { transfers: [transfer(`page-${i}`, 100 + i)] })).status).toBe(200);
    const byTag = await api("GET", "/v2/transfer?tags=ponte-payout/page-3");
    expect(byTag.json.transfers.map((t: { externalId: string }) => t.externalId)).toEqual(["page-3"]);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `&cursor=${cursor}` : "";
      const p = await api("GET", `/v2/transfer?limit=2${q}`);
      expect(p.json.transfers.length).toBeLessThanOrEqual(2);
      seen.push(...p.json.transfers.map((t: { externalId: string }) => t.externalId));
      cursor = p.json.cursor;
    } while (cursor);
    expect(seen.sort()).toEqual(["page-0", "page-1", "page-2", "page-3", "page-4"]);
  });

  it("serves DICT keys with the CPF masked", async () => {
    const r = await api("GET", `/v2/dict-key/${encodeURIComponent(HOLDER.key)}`);
    expect(r.json.key).toMatchObject({ name: "Ana Souza", taxId: "***.456.789-**", ispb: "18236120", ownerType: "naturalPerson" });
    expect((await api("GET", "/v2/dict-key/nobody%40example.com")).status).toBe(404);
  });

  it("holds transfers when autoAdvance is off and moves them on demand", async () => {
    await standin.admin.configure({ autoAdvance: false });
    const id = (await api("POST", "/v2/transfer", { transfers: [transfer("manual")] })).json.transfers[0].id as string;
    await new Promise((r) => setTimeout(r, 80));
    expect((await api("GET", `/v2/transfer/${id}`)).json.transfer.status).toBe("created");
    await standin.admin.advance(id, "processing");
    await standin.admin.advance(id, "failed", ["Account closed"]);
    const logs = (await api("GET", `/v2/transfer/log?transferIds=${id}&types=failed`)).json.logs;
    expect(logs[0].errors).toEqual(["Account closed"]);
    expect((await standin.admin.transfers()).totals.failed).toBe(1);
  });
});

describe("faults", () => {
  it("http500 refuses without creating; http500_after_accept creates and still answers 500", async () => {
    await standin.admin.addFault({ kind: "http500", route: "create" });
    expect((await api("POST", "/v2/transfer", { transfers: [transfer("f-1")] })).status).toBe(500);
    expect((await standin.admin.transfers()).byExternalId["f-1"]).toMatchObject({ transfers: 0, createAttempts: 1 });

    await standin.admin.addFault({ kind: "http500_after_accept", externalId: "f-2" });
    expect((await api("POST", "/v2/transfer", { transfers: [transfer("f-2")] })).status).toBe(500);
    expect((await standin.admin.transfers()).byExternalId["f-2"]).toMatchObject({ transfers: 1 });
  });

  it("timeout_after_accept creates the transfer and never answers", async () => {
    await standin.admin.addFault({ kind: "timeout_after_accept", delayMs: 200 });
    const body = JSON.stringify({ transfers: [transfer("f-3")] });
    await expect(
      fetch(`${standin.url}/v2/transfer`, { method: "POST", headers: signedHeaders(ACCESS_ID, client.privateKey, body), body }),
    ).rejects.toThrow();
    expect((await standin.admin.transfers()).byExternalId["f-3"]).toMatchObject({ transfers: 1 });
  });

  it("duplicates, drops and reorders webhooks on demand", async () => {
    await standin.admin.addFault({ kind: "duplicate_webhook", externalId: "w-dup", eventType: "success", times: 3 });
    await standin.admin.addFault({ kind: "drop_webhook", externalId: "w-drop", eventType: "processing" });
    // Held until the next event is delivered: with the default 2 s ceiling, a loaded machine
    // (success later than 2 s after processing) delivered it in order and failed this test.
    await standin.admin.addFault({ kind: "out_of_order_webhook", externalId: "w-ooo", eventType: "processing", delayMs: 60_000 });
    for (const e of ["w-dup", "w-drop", "w-ooo"]) await api("POST", "/v2/transfer", { transfers: [transfer(e)] });

    await eventually(() => {
      expect(eventsFor("w-dup").map((e) => e.event.log.type)).toEqual(["created", "processing", "success", "success", "success"]);
      expect(new Set(eventsFor("w-dup").filter((e) => e.event.log.type === "success").map((e) => e.event.id)).size).toBe(1);
      expect(eventsFor("w-drop").map((e) => e.event.log.type)).toEqual(["created", "success"]);
      expect(eventsFor("w-ooo").map((e) => e.event.log.type)).toEqual(["created", "success", "processing"]);
    });
  });

  // The race that made the test above flaky: "created" delivered after "processing" was already
  // held released it, so it went out in order. A held event now waits for an event emitted after it.
  it("a held event waits for the next event, not for an earlier one delivered late", async () => {
    let openGate!: () => void;
    const gate = new Promise<void>((r) => (openGate = r));
    const arrived: string[] = [];
    const got: string[] = [];
    const gated = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const type = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { event: { log: { type: string } } }).event.log.type;
        arrived.push(type);
        void (type === "created" ? gate : Promise.resolve()).then(() => {
          got.push(type);
          res.writeHead(200).end();
        });
      });
    });
    await new Promise<void>((r) => gated.listen(0, "127.0.0.1", r));
    await standin.admin.setWebhookUrl(`http://127.0.0.1:${(gated.address() as { port: number }).port}/`);
    try {
      await standin.admin.configure({ autoAdvance: false });
      await standin.admin.addFault({ kind: "out_of_order_webhook", externalId: "late-created", eventType: "processing", delayMs: 60_000 });
      const id = (await api("POST", "/v2/transfer", { transfers: [transfer("late-created")] })).json.transfers[0].id as string;
      await eventually(() => expect(arrived).toEqual(["created"]));
      await standin.admin.advance(id, "processing"); // held while "created" is still being delivered
      openGate();
      await eventually(() => expect(got).toEqual(["created"]));
      await standin.admin.advance(id, "success");
      await eventually(() => expect(got).toEqual(["created", "success", "processing"]));
    } finally {
      openGate();
      await standin.admin.setWebhookUrl(`http://127.0.0.1:${(receiver.address() as { port: number }).port}/`);
      await new Promise((r) => gated.close(r));
    }
  });

  it("late_failure fails a transfer after processing; return charges a success back", async () => {
    await standin.admin.addFault({ kind: "late_failure", externalId: "late", delayMs: 30 });
    await standin.admin.addFault({ kind: "return", externalId: "ret", delayMs: 30 });
    await api("POST", "/v2/transfer", { transfers: [transfer("late")] });
    await api("POST", "/v2/transfer", { transfers: [transfer("ret")] });
    await eventually(() => {
      expect(eventsFor("late").map((e) => e.event.log.type)).toEqual(["created", "processing", "failed"]);
      expect(eventsFor("ret").map((e) => e.event.log.type)).toEqual(["created", "processing", "success", "chargeback"]);
    });
    const s = await standin.admin.transfers();
    expect(s.totals).toMatchObject({ failed: 1, returned: 1, paidCentavos: "0" });
  });

  it("retries a webhook the receiver refuses", async () => {
    let refusals = 2;
    const flaky = createServer((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(refusals-- > 0 ? 503 : 200).end());
    });
    await new Promise<void>((r) => flaky.listen(0, "127.0.0.1", r));
    await standin.admin.setWebhookUrl(`http://127.0.0.1:${(flaky.address() as { port: number }).port}/`);
    try {
      await standin.admin.configure({ autoAdvance: false });
      await api("POST", "/v2/transfer", { transfers: [transfer("retry")] });
      await eventually(async () => {
        const [ev] = await standin.admin.events();
        expect(ev).toMatchObject({ state: "delivered", attempts: 3, deliveries: 1 });
      });
    } finally {
      await standin.admin.setWebhookUrl(`http://127.0.0.1:${(receiver.address() as { port: number }).port}/`);
      await new Promise((r) => flaky.close(r));
    }
  });
});
