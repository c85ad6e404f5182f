// The stand-in's HTTP surface: Stark Bank's API v2 (the parts Ponte's adapter uses) under /v2,
// and a test-only admin API under /_admin to seed it, inject faults and count what was paid.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { KeyObject } from "node:crypto";
import { isValidDocument, normalizeDocument, type Logger } from "@ponte/common";
import { generateKeyPair, keyPairFromPrivatePem, publicKeyFromPem, signBase64, verifyBase64, type KeyPair } from "./crypto.js";
import {
  dateOnly,
  endToEndId,
  FAULT_KINDS,
  formatCnpj,
  iso,
  maskCpf,
  newId,
  type EventRecord,
  type Fault,
  type FaultKind,
  type FaultRoute,
  type FaultSpec,
  type KeyHolder,
  type TransferJson,
  type TransferLogJson,
} from "./model.js";
import { WebhookDispatcher, type DeliveryPlan } from "./webhooks.js";

export interface StandinConfig {
  processingDelayMs: number;
  settleDelayMs: number;
  /** false: transfers stay "created" until POST /_admin/transfers/{id}/advance. */
  autoAdvance: boolean;
  accessTimeWindowSec: number;
  webhookAttempts: number;
  webhookRetryBaseMs: number;
}

export interface StarkbankStandinOptions extends Partial<StandinConfig> {
  /** Projects whose requests are accepted: Access-Id "project/<id>", verified with publicKeyPem. */
  projects?: { id: string; publicKeyPem: string }[];
  keys?: KeyHolder[];
  webhookUrl?: string;
  workspaceId?: string;
  /** The key "Stark Bank" signs webhooks with (its public half is served at /v2/public-key). */
  signingKeyPem?: string;
  webhookTimeoutMs?: number;
  logger: Logger;
}

const DEFAULT_ISPB = "20018183";
const ACCOUNT_TYPES = new Set(["checking", "savings", "salary", "payment"]);
const MAX_BODY = 1 << 20;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly errors: { code: string; message: string }[],
  ) {
    super(errors.map((e) => e.message).join("; "));
  }
}

interface Plan {
  outcome: "success" | "failed";
  failDelayMs: number;
  returnAfterMs?: number;
}

export class StarkbankStandinServer {
  readonly server: Server;
  readonly config: StandinConfig;
  readonly dispatcher: WebhookDispatcher;
  private readonly projects = new Map<string, KeyObject>();
  private readonly holders = new Map<string, KeyHolder>();
  private readonly transfers: TransferJson[] = [];
  private readonly byId = new Map<string, TransferJson>();
  private readonly byExternalId = new Map<string, TransferJson>();
  /** Without an externalId, Stark Bank refuses a repeat of amount + receiver on the same day. */
  private readonly implicitKeys = new Set<string>();
  private readonly createAttempts = new Map<string, number>();
  /** API requests received per route ("GET /v2/public-key"), authenticated or not. */
  private readonly requestCounts = new Map<string, number>();
  private readonly logs: TransferLogJson[] = [];
  private faults: Fault[] = [];
  private signing: KeyPair;
  private webhookUrl: string | undefined;
  private readonly workspaceId: string;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly heldResponses = new Set<ServerResponse>();
  private readonly logger: Logger;

  constructor(o: StarkbankStandinOptions) {
    this.logger = o.logger;
    this.config = {
      processingDelayMs: o.processingDelayMs ?? 50,
      settleDelayMs: o.settleDelayMs ?? 100,
      autoAdvance: o.autoAdvance ?? true,
      accessTimeWindowSec: o.accessTimeWindowSec ?? 300,
      webhookAttempts: o.webhookAttempts ?? 6,
      webhookRetryBaseMs: o.webhookRetryBaseMs ?? 100,
    };
    for (const p of o.projects ?? []) this.projects.set(`project/${p.id}`, publicKeyFromPem(p.publicKeyPem));
    for (const k of o.keys ?? []) this.addHolder(k);
    this.webhookUrl = o.webhookUrl;
    this.workspaceId = o.workspaceId ?? newId();
    this.signing = o.signingKeyPem ? keyPairFromPrivatePem(o.signingKeyPem) : generateKeyPair();
    this.dispatcher = new WebhookDispatcher({
      url: () => this.webhookUrl,
      sign: (body) => signBase64(this.signing.privateKey, body),
      attempts: () => this.config.webhookAttempts,
      retryBaseMs: () => this.config.webhookRetryBaseMs,
      timeoutMs: o.webhookTimeoutMs ?? 5_000,
      logger: this.logger,
    });
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.logger.error({ err }, "Stand-in request failed");
        if (!res.headersSent) send(res, 500, { errors: [{ code: "internalServerError", message: "stand-in error" }] });
      });
    });
  }

  get publicKeyPem(): string {
    return this.signing.publicKeyPem;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const r of this.heldResponses) r.destroy();
    await this.dispatcher.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---------------------------------------------------------------- routing

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://standin");
    try {
      const raw = await readBody(req);
      if (url.pathname.startsWith("/_admin/")) return await this.admin(req.method ?? "GET", url, raw, res);
      if (url.pathname.startsWith("/v2/")) return await this.api(req, url, raw, res);
      throw new HttpError(404, [{ code: "routeNotFound", message: `no route ${req.method} ${url.pathname}` }]);
    } catch (err) {
      if (err instanceof HttpError) return send(res, err.status, { errors: err.errors });
      throw err;
    }
  }

  private async api(req: IncomingMessage, url: URL, raw: string, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    const path = url.pathname.replace(/\/+$/, "");
    const counted = `${method} ${path.replace(/^(\/v2\/(?:transfer|dict-key))\/(?!log$)[^/]+$/, "$1/{id}")}`;
    this.requestCounts.set(counted, (this.requestCounts.get(counted) ?? 0) + 1);
    this.authenticate(req, raw);
    const q = url.searchParams;

    if (method === "POST" && path === "/v2/transfer") return this.createTransfers(raw, res);
    if (method !== "GET") throw new HttpError(405, [{ code: "methodNotAllowed", message: `${method} ${path}` }]);

    if (path === "/v2/public-key") {
      if (this.httpFault("public_key", null, res)) return;
      return send(res, 200, { cursor: null, publicKeys: [{ content: this.signing.publicKeyPem, created: iso(Date.now()) }] });
    }
    if (path === "/v2/transfer/log") {
      if (this.httpFault("list", null, res)) return;
      return this.listLogs(q, res);
    }
    if (path === "/v2/transfer") {
      if (this.httpFault("list", null, res)) return;
      return this.listTransfers(q, res);
    }
    const transferId = /^\/v2\/transfer\/([^/]+)$/.exec(path)?.[1];
    if (transferId) {
      if (this.httpFault("get", null, res)) return;
      const t = this.byId.get(transferId);
      if (!t) throw new HttpError(404, [{ code: "invalidTransferId", message: `Transfer ${transferId} not found` }]);
      return send(res, 200, { transfer: t });
    }
    const dictKey = /^\/v2\/dict-key\/([^/]+)$/.exec(path)?.[1];
    if (dictKey) {
      if (this.httpFault("dict", null, res)) return;
      return this.getDictKey(decodeURIComponent(dictKey), res);
    }
    throw new HttpError(404, [{ code: "routeNotFound", message: `no route GET ${path}` }]);
  }

  /** Access-Id / Access-Time / Access-Signature over "<id>:<time>:<raw body>". */
  private authenticate(req: IncomingMessage, raw: string): void {
    const h = (n: string) => {
      const v = req.headers[n];
      return Array.isArray(v) ? v[0] : v;
    };
    const accessId = h("access-id");
    const accessTime = h("access-time");
    const signature = h("access-signature");
    if (!accessId || !accessTime || !signature) {
      throw new HttpError(401, [{ code: "invalidCredentials", message: "Access-Id, Access-Time and Access-Signature are required" }]);
    }
    const key = this.projects.get(accessId);
    if (!key) throw new HttpError(401, [{ code: "invalidAccessId", message: `unknown ${accessId}` }]);
    const t = Number(accessTime);
    if (!Number.isFinite(t) || Math.abs(Date.now() / 1000 - t) > this.config.accessTimeWindowSec) {
      throw new HttpError(401, [{ code: "invalidAccessTime", message: "Access-Time is outside the accepted window" }]);
    }
    if (!verifyBase64(key, `${accessId}:${accessTime}:${raw}`, signature)) {
      throw new HttpError(401, [{ code: "invalidSignature", message: "Access-Signature does not match" }]);
    }
  }

  // ---------------------------------------------------------------- API handlers

  private async createTransfers(raw: string, res: ServerResponse): Promise<void> {
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      throw new HttpError(400, [{ code: "invalidJson", message: "body is not JSON" }]);
    }
    const items = (body as { transfers?: unknown }).transfers;
    if (!Array.isArray(items) || items.length === 0 || items.length > 100) {
      throw new HttpError(400, [{ code: "invalidTransfers", message: "transfers must be a list of 1 to 100" }]);
    }
    const externalIds = items
      .map((i) => (i as { externalId?: unknown }).externalId)
      .filter((x): x is string => typeof x === "string");
    for (const e of externalIds) this.createAttempts.set(e, (this.createAttempts.get(e) ?? 0) + 1);

    if (this.httpFault("create", externalIds, res)) return;
    const reject = this.takeFault("reject", (f) => matchesExternal(f, externalIds));
    if (reject) {
      throw new HttpError(reject.status ?? 400, [{ code: reject.code ?? "invalidTransfer", message: "rejected by fault injection" }]);
    }

    const now = Date.now();
    const errors: { code: string; message: string }[] = [];
    const batchKeys = new Set<string>();
    const fresh: TransferJson[] = [];
    items.forEach((item, i) => {
      const r = this.validateTransfer(item, i, now, batchKeys);
      if ("errors" in r) errors.push(...r.errors);
      else fresh.push(r.transfer);
    });
    // A batch is created whole or not at all.
    if (errors.length > 0) throw new HttpError(400, errors);

    const plans = new Map<string, Plan>();
    for (const t of fresh) {
      this.transfers.push(t);
      this.byId.set(t.id, t);
      if (t.externalId) this.byExternalId.set(t.externalId, t);
      else this.implicitKeys.add(implicitKey(t));
      plans.set(t.id, this.planFor(t));
    }
    const delivered = fresh.map((t) => this.addLog(t, "created", []));
    if (this.config.autoAdvance) for (const t of fresh) this.scheduleLifecycle(t, plans.get(t.id)!);
    this.logger.info({ count: fresh.length, external_ids: externalIds }, "Transfers created");

    const answer = { message: "Transfer(s) successfully created", transfers: fresh };
    if (this.takeFault("http500_after_accept", (f) => matchesExternal(f, externalIds))) {
      return send(res, 500, { errors: [{ code: "internalServerError", message: "Houston, we have a problem." }] });
    }
    const hold = this.takeFault("timeout_after_accept", (f) => matchesExternal(f, externalIds));
    if (hold) return this.holdResponse(res, hold.delayMs ?? 60_000);
    const before = this.takeFault("webhook_before_response", (f) => matchesExternal(f, externalIds));
    if (before) {
      await Promise.all(delivered);
      if (before.delayMs) await new Promise<void>((r) => this.later(r, before.delayMs!));
    }
    return send(res, 200, answer);
  }

  private validateTransfer(
    item: unknown,
    i: number,
    now: number,
    batchKeys: Set<string>,
  ): { transfer: TransferJson } | { errors: { code: string; message: string }[] } {
    const o = (item ?? {}) as Record<string, unknown>;
    const errors: { code: string; message: string }[] = [];
    const bad = (code: string, message: string) => errors.push({ code, message: `transfers[${i}]: ${message}` });
    const str = (k: string) => (typeof o[k] === "string" ? (o[k] as string) : undefined);

    const amount = o.amount;
    if (typeof amount !== "number" || !Number.isSafeInteger(amount) || amount <= 0) bad("invalidAmount", "amount must be a positive integer of centavos");
    const name = str("name");
    if (!name?.trim()) bad("invalidName", "name is required");
    const taxId = str("taxId");
    if (!taxId || !isValidDocument(normalizeDocument(taxId))) bad("invalidTaxId", "taxId must be a valid CPF or CNPJ");
    const bankCode = str("bankCode");
    if (!bankCode || !/^(\d{8}|\d{1,3})$/.test(bankCode)) bad("invalidBankCode", "bankCode must be an 8-digit ISPB (Pix) or a 1-3 digit bank code (TED)");
    const branchCode = str("branchCode");
    if (!branchCode || !/^\d{1,4}(-\d)?$/.test(branchCode)) bad("invalidBranchCode", "branchCode is invalid");
    const accountNumber = str("accountNumber");
    if (!accountNumber || !/^[\dXx-]{1,20}$/.test(accountNumber)) bad("invalidAccountNumber", "accountNumber is invalid");
    const accountType = str("accountType") ?? "checking";
    if (!ACCOUNT_TYPES.has(accountType)) bad("invalidAccountType", "accountType must be checking, savings, salary or payment");
    const externalId = o.externalId === undefined || o.externalId === null ? null : str("externalId");
    if (externalId === undefined || (externalId !== null && !/^[A-Za-z0-9._~-]{1,64}$/.test(externalId))) {
      bad("invalidExternalId", "externalId must be a url safe string");
    } else if (externalId !== null && (this.byExternalId.has(externalId) || batchKeys.has(externalId))) {
      bad("invalidExternalId", `externalId ${externalId} has already been used`);
    }
    const tags = o.tags === undefined ? [] : o.tags;
    if (!Array.isArray(tags) || !tags.every((t) => typeof t === "string")) bad("invalidTags", "tags must be a list of strings");
    const description = o.description === undefined || o.description === null ? null : str("description");
    if (description === undefined) bad("invalidDescription", "description must be a string");
    if (errors.length > 0) return { errors };

    const transfer: TransferJson = {
      id: newId(),
      amount: amount as number,
      name: name!,
      taxId: taxId!,
      bankCode: bankCode!,
      branchCode: branchCode!,
      accountNumber: accountNumber!,
      accountType,
      externalId: externalId ?? null,
      scheduled: iso(now),
      description: description ?? null,
      tags: (tags as string[]).map((t) => t.toLowerCase()),
      rules: [],
      fee: 0,
      status: "created",
      transactionIds: [],
      metadata: {},
      created: iso(now),
      updated: iso(now),
    };
    if (externalId) batchKeys.add(externalId);
    else {
      const k = implicitKey(transfer);
      if (this.implicitKeys.has(k) || batchKeys.has(k)) {
        return { errors: [{ code: "invalidTransfer", message: `transfers[${i}]: a transfer with this amount and receiver was already created today` }] };
      }
      batchKeys.add(k);
    }
    return { transfer };
  }

  private listTransfers(q: URLSearchParams, res: ServerResponse): void {
    const list = (k: string) => (q.get(k) ? q.get(k)!.split(",").map((s) => s.trim()).filter(Boolean) : undefined);
    const tags = list("tags")?.map((t) => t.toLowerCase());
    const ids = list("ids");
    const status = q.get("status");
    const after = q.get("after");
    const before = q.get("before");
    let rows = this.transfers.filter(
      (t) =>
        (!tags || t.tags.some((x) => tags.includes(x))) &&
        (!ids || ids.includes(t.id)) &&
        (!status || t.status === status) &&
        (!after || t.created.slice(0, 10) >= after) &&
        (!before || t.created.slice(0, 10) <= before),
    );
    rows = q.get("sort") === "created" ? rows : [...rows].reverse();
    send(res, 200, page(rows, q, "transfers"));
  }

  private listLogs(q: URLSearchParams, res: ServerResponse): void {
    const ids = q.get("transferIds")?.split(",");
    const types = q.get("types")?.split(",");
    const rows = this.logs
      .filter((l) => (!ids || ids.includes(l.transfer.id)) && (!types || types.includes(l.type)))
      .reverse();
    send(res, 200, page(rows, q, "logs"));
  }

  private getDictKey(key: string, res: ServerResponse): void {
    const h = this.holders.get(key);
    if (!h) throw new HttpError(404, [{ code: "invalidDictKey", message: `Pix key ${key} was not found` }]);
    const doc = normalizeDocument(h.taxId);
    const isCpf = doc.length === 11;
    send(res, 200, {
      key: {
        id: h.key,
        type: h.type,
        name: h.name,
        taxId: isCpf ? maskCpf(doc) : formatCnpj(doc),
        ownerType: isCpf ? "naturalPerson" : "legalPerson",
        bankName: h.bankName ?? "Stark Bank",
        ispb: h.ispb ?? DEFAULT_ISPB,
        branchCode: h.branchCode ?? "0001",
        accountNumber: h.accountNumber ?? "0000000-0",
        accountType: h.accountType ?? "checking",
        status: "registered",
        accountCreated: iso(Date.UTC(2020, 0, 1)),
        owned: iso(Date.UTC(2020, 0, 1)),
        created: iso(Date.UTC(2020, 0, 1)),
      },
    });
  }

  // ---------------------------------------------------------------- lifecycle

  private planFor(t: TransferJson): Plan {
    const holder = [...this.holders.values()].find(
      (h) => (h.ispb ?? DEFAULT_ISPB) === t.bankCode && (h.branchCode ?? "0001") === t.branchCode && (h.accountNumber ?? "0000000-0") === t.accountNumber,
    );
    const ext = t.externalId ? [t.externalId] : [];
    const late = this.takeFault("late_failure", (f) => matchesExternal(f, ext));
    const ret = this.takeFault("return", (f) => matchesExternal(f, ext));
    const outcome = late || holder?.outcome === "failed" ? "failed" : "success";
    return {
      outcome,
      failDelayMs: late?.delayMs ?? 0,
      ...(ret && outcome === "success" ? { returnAfterMs: ret.delayMs ?? 100 } : {}),
    };
  }

  private scheduleLifecycle(t: TransferJson, plan: Plan): void {
    this.later(() => {
      if (t.status !== "created") return;
      this.advance(t, "processing");
      this.later(
        () => {
          if (t.status !== "processing") return;
          if (plan.outcome === "failed") {
            this.advance(t, "failed", ["Receiver account rejected the transfer"]);
            return;
          }
          this.advance(t, "success");
          if (plan.returnAfterMs !== undefined) this.later(() => this.advance(t, "returned"), plan.returnAfterMs);
        },
        this.config.settleDelayMs + (plan.outcome === "failed" ? plan.failDelayMs : 0),
      );
    }, this.config.processingDelayMs);
  }

  /** One step of a transfer's life; also what POST /_admin/transfers/{id}/advance calls. */
  advance(t: TransferJson, to: "processing" | "success" | "failed" | "returned" | "canceled", errors: string[] = []): void {
    const from = t.status;
    const ok =
      (to === "processing" && from === "created") ||
      (to === "success" && (from === "processing" || from === "created")) ||
      (to === "failed" && (from === "processing" || from === "created")) ||
      (to === "returned" && from === "success" && t.transactionIds.length < 2) ||
      (to === "canceled" && from === "created");
    if (!ok) throw new HttpError(409, [{ code: "invalidTransition", message: `transfer ${t.id} is ${from}; cannot become ${to}` }]);
    const now = Date.now();
    if (to === "processing" || ((to === "success" || to === "failed") && from === "created")) {
      // The debit happens when the transfer starts processing.
      t.transactionIds.push(newId());
      t.metadata = { authentication: endToEndId(t.bankCode.length === 8 ? t.bankCode : DEFAULT_ISPB, now) };
    }
    if (to === "processing" || to === "success" || to === "failed" || to === "canceled") t.status = to;
    // A failure after the debit puts the money back: a second ledger transaction.
    if (to === "failed" || to === "returned") t.transactionIds.push(newId());
    t.updated = iso(now);
    const logType = to === "returned" ? "chargeback" : to;
    void this.addLog(t, logType, to === "failed" && errors.length === 0 ? ["Transfer failed"] : errors);
  }

  private addLog(t: TransferJson, type: string, errors: string[], createdMs = Date.now()): Promise<void> {
    const log: TransferLogJson = { id: newId(), type, errors, created: iso(createdMs), transfer: structuredClone(t) };
    this.logs.push(log);
    return this.emitEvent(log, createdMs).promise;
  }

  private emitEvent(log: TransferLogJson, createdMs: number, plan?: DeliveryPlan): { record: EventRecord; promise: Promise<void> } {
    const event = {
      id: newId(),
      created: iso(createdMs),
      isDelivered: false,
      subscription: "transfer",
      workspaceId: this.workspaceId,
      log,
    };
    const body = JSON.stringify({ event });
    const record: EventRecord = {
      id: event.id,
      transferId: log.transfer.id,
      externalId: log.transfer.externalId,
      type: log.type,
      created: event.created,
      body,
      signature: signBase64(this.signing.privateKey, body),
      state: "pending",
      attempts: 0,
      deliveries: 0,
    };
    return { record, promise: this.dispatcher.emit(record, plan ?? this.deliveryPlan(record)) };
  }

  private deliveryPlan(rec: EventRecord): DeliveryPlan {
    const ext = rec.externalId ? [rec.externalId] : [];
    const match = (f: Fault) => matchesExternal(f, ext) && (!f.eventType || f.eventType === rec.type);
    if (this.takeFault("drop_webhook", match)) return { copies: 0, drop: true };
    const dup = this.takeFault("duplicate_webhook", match);
    const ooo = this.takeFault("out_of_order_webhook", match);
    return {
      copies: dup ? (dup.times ?? 3) : 1,
      drop: false,
      ...(ooo ? { holdMaxMs: ooo.delayMs ?? 2_000 } : {}),
    };
  }

  // ---------------------------------------------------------------- faults

  private takeFault(kind: FaultKind, pred: (f: Fault) => boolean = () => true): Fault | undefined {
    const f = this.faults.find((x) => x.kind === kind && x.fired < x.count && pred(x));
    if (f) {
      f.fired++;
      this.logger.info({ fault: kind, fault_id: f.id }, "Fault injected");
    }
    return f;
  }

  /** http500 / timeout before anything happens; true when the response was taken care of. */
  private httpFault(route: Exclude<FaultRoute, "any">, externalIds: string[] | null, res: ServerResponse): boolean {
    const pred = (f: Fault) => ((f.route ?? "any") === "any" || f.route === route) && matchesExternal(f, externalIds ?? []);
    if (this.takeFault("http500", pred)) {
      send(res, 500, { errors: [{ code: "internalServerError", message: "Houston, we have a problem." }] });
      return true;
    }
    const t = this.takeFault("timeout", pred);
    if (t) {
      this.holdResponse(res, t.delayMs ?? 60_000);
      return true;
    }
    return false;
  }

  private holdResponse(res: ServerResponse, ms: number): void {
    this.heldResponses.add(res);
    this.later(() => {
      this.heldResponses.delete(res);
      res.destroy();
    }, ms);
  }

  private later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      try {
        fn();
      } catch (err) {
        this.logger.error({ err }, "Stand-in timer failed");
      }
    }, ms);
    this.timers.add(t);
  }

  // ---------------------------------------------------------------- admin

  addHolder(h: KeyHolder): void {
    if (!h.key || !h.name || !isValidDocument(normalizeDocument(h.taxId ?? ""))) {
      throw new HttpError(400, [{ code: "invalidHolder", message: "a holder needs key, name and a valid taxId" }]);
    }
    this.holders.set(h.key, h);
  }

  summary() {
    const byExternalId: Record<string, { transfers: number; createAttempts: number; status: string | null; amount: number | null }> = {};
    for (const [ext, attempts] of this.createAttempts) {
      const t = this.byExternalId.get(ext);
      byExternalId[ext] = { transfers: t ? 1 : 0, createAttempts: attempts, status: t ? statusWord(t) : null, amount: t?.amount ?? null };
    }
    const count = (s: string) => this.transfers.filter((t) => statusWord(t) === s).length;
    const paid = this.transfers.filter((t) => statusWord(t) === "success").reduce((a, t) => a + BigInt(t.amount), 0n);
    return {
      transfers: this.transfers,
      byExternalId,
      totals: {
        count: this.transfers.length,
        created: count("created"),
        processing: count("processing"),
        success: count("success"),
        failed: count("failed"),
        returned: count("returned"),
        canceled: count("canceled"),
        /** Centavos that left and stayed out (success, not returned), as a decimal string. */
        paidCentavos: paid.toString(),
      },
    };
  }

  private async admin(method: string, url: URL, raw: string, res: ServerResponse): Promise<void> {
    const path = url.pathname.replace(/\/+$/, "");
    const body = (): Record<string, unknown> => {
      if (!raw) return {};
      try {
        return JSON.parse(raw) as Record<string, unknown>;
      } catch {
        throw new HttpError(400, [{ code: "invalidJson", message: "body is not JSON" }]);
      }
    };
    const route = `${method} ${path}`;
    switch (route) {
      case "GET /_admin/health":
        return send(res, 200, { ok: true });
      case "POST /_admin/reset":
        for (const t of this.timers) clearTimeout(t);
        this.timers.clear();
        this.transfers.length = 0;
        this.byId.clear();
        this.byExternalId.clear();
        this.implicitKeys.clear();
        this.createAttempts.clear();
        this.requestCounts.clear();
        this.logs.length = 0;
        this.faults = [];
        this.dispatcher.clear();
        return send(res, 200, { ok: true });
      case "POST /_admin/projects": {
        const b = body();
        if (typeof b.id !== "string" || typeof b.publicKeyPem !== "string") {
          throw new HttpError(400, [{ code: "invalidProject", message: "id and publicKeyPem are required" }]);
        }
        this.projects.set(`project/${b.id}`, publicKeyFromPem(b.publicKeyPem));
        return send(res, 200, { accessId: `project/${b.id}` });
      }
      case "POST /_admin/keys": {
        const b = body();
        const list = (Array.isArray(b.keys) ? b.keys : [b]) as KeyHolder[];
        for (const h of list) this.addHolder(h);
        return send(res, 200, { count: list.length });
      }
      case "GET /_admin/keys":
        return send(res, 200, { keys: [...this.holders.values()] });
      case "PUT /_admin/webhook": {
        const u = body().url;
        if (u !== null && typeof u !== "string") throw new HttpError(400, [{ code: "invalidUrl", message: "url must be a string or null" }]);
        this.webhookUrl = u ?? undefined;
        return send(res, 200, { url: this.webhookUrl ?? null });
      }
      case "PUT /_admin/config": {
        const b = body();
        for (const k of Object.keys(this.config) as (keyof StandinConfig)[]) {
          if (b[k] === undefined) continue;
          if (typeof b[k] !== typeof this.config[k]) throw new HttpError(400, [{ code: "invalidConfig", message: `${k} has the wrong type` }]);
          (this.config as unknown as Record<string, unknown>)[k] = b[k];
        }
        return send(res, 200, { config: this.config });
      }
      case "POST /_admin/faults": {
        const b = body() as unknown as FaultSpec;
        if (!(FAULT_KINDS as readonly string[]).includes(b.kind)) {
          throw new HttpError(400, [{ code: "invalidFault", message: `kind must be one of ${FAULT_KINDS.join(", ")}` }]);
        }
        const fault: Fault = { ...b, id: newId(), count: b.count ?? 1, fired: 0 };
        this.faults.push(fault);
        return send(res, 200, { fault });
      }
      case "GET /_admin/faults":
        return send(res, 200, { faults: this.faults });
      case "DELETE /_admin/faults":
        this.faults = [];
        return send(res, 200, { ok: true });
      case "GET /_admin/transfers":
        return send(res, 200, this.summary());
      case "GET /_admin/requests":
        return send(res, 200, { requests: Object.fromEntries(this.requestCounts) });
      case "GET /_admin/events":
        return send(res, 200, { events: this.dispatcher.events });
      case "POST /_admin/events": {
        // Emits a signed event about a transfer as it is now, optionally with a chosen creation time
        // (stale-event tests) and optionally without delivering it.
        const b = body();
        const t = typeof b.transferId === "string" ? this.byId.get(b.transferId) : undefined;
        if (!t) throw new HttpError(404, [{ code: "invalidTransferId", message: "transferId is unknown" }]);
        const created = typeof b.created === "string" ? Date.parse(b.created) : Date.now();
        if (Number.isNaN(created)) throw new HttpError(400, [{ code: "invalidCreated", message: "created is not a date" }]);
        const log: TransferLogJson = {
          id: newId(),
          type: typeof b.type === "string" ? b.type : t.status,
          errors: [],
          created: iso(created),
          transfer: structuredClone(t),
        };
        const { record, promise } = this.emitEvent(log, created, b.deliver === false ? { copies: 0, drop: true } : undefined);
        if (b.deliver !== false) await promise;
        return send(res, 200, { event: record });
      }
      case "POST /_admin/rotate-key":
        this.signing = generateKeyPair();
        return send(res, 200, { publicKeyPem: this.signing.publicKeyPem });
      case "POST /_admin/sign": {
        const b = body();
        if (typeof b.body !== "string") throw new HttpError(400, [{ code: "invalidBody", message: "body must be a string" }]);
        return send(res, 200, { signature: signBase64(this.signing.privateKey, b.body) });
      }
    }
    // Moves a transfer's creation time (reconciliation tests need "yesterday's" transfers).
    const backdate = /^\/_admin\/transfers\/([^/]+)\/backdate$/.exec(path);
    if (method === "POST" && backdate) {
      const t = this.byId.get(backdate[1]!);
      if (!t) throw new HttpError(404, [{ code: "invalidTransferId", message: "unknown transfer" }]);
      const created = Date.parse(String(body().created));
      if (Number.isNaN(created)) throw new HttpError(400, [{ code: "invalidCreated", message: "created is not a date" }]);
      t.created = iso(created);
      t.scheduled = iso(created);
      return send(res, 200, { transfer: t });
    }
    const advance = /^\/_admin\/transfers\/([^/]+)\/advance$/.exec(path);
    if (method === "POST" && advance) {
      const t = this.byId.get(advance[1]!);
      if (!t) throw new HttpError(404, [{ code: "invalidTransferId", message: "unknown transfer" }]);
      const b = body();
      const to = b.to;
      if (to !== "processing" && to !== "success" && to !== "failed" && to !== "returned" && to !== "canceled") {
        throw new HttpError(400, [{ code: "invalidStatus", message: "to must be processing, success, failed, returned or canceled" }]);
      }
      this.advance(t, to, Array.isArray(b.errors) ? (b.errors as string[]) : []);
      return send(res, 200, { transfer: t });
    }
    throw new HttpError(404, [{ code: "routeNotFound", message: `no admin route ${route}` }]);
  }
}

/** Status as tests think of it: a success with a chargeback is "returned". */
const statusWord = (t: TransferJson): string => (t.status === "success" && t.transactionIds.length >= 2 ? "returned" : t.status);

const implicitKey = (t: TransferJson): string =>
  [dateOnly(Date.parse(t.created)), t.amount, normalizeDocument(t.taxId), t.bankCode, t.branchCode, t.accountNumber].join("|");

const matchesExternal = (f: Fault, externalIds: string[]): boolean => !f.externalId || externalIds.includes(f.externalId);

function page<T>(rows: T[], q: URLSearchParams, name: string): Record<string, unknown> {
  const limit = Math.min(100, Math.max(1, Number(q.get("limit") ?? 100) || 100));
  const offset = q.get("cursor") ? Number(Buffer.from(q.get("cursor")!, "base64url").toString()) || 0 : 0;
  const slice = rows.slice(offset, offset + limit);
  const next = offset + limit < rows.length ? Buffer.from(String(offset + limit)).toString("base64url") : null;
  return { [name]: slice, cursor: next };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    const b = c as Buffer;
    size += b.length;
    if (size > MAX_BODY) throw new HttpError(413, [{ code: "payloadTooLarge", message: "body too large" }]);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString("utf8");
}
