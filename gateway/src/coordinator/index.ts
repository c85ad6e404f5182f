import { credentials, Metadata, type CallOptions, type ClientUnaryCall, type ServiceError } from "@grpc/grpc-js";
import { fromGrpcError, Histogram, LATENCY_BUCKETS, type Logger, type Registry } from "@ponte/common";
import { tradev1 } from "@ponte/proto";
import type { AssetJson, AuditLogJson, CustodialAccountJson, PixKeyJson, QuoteJson, TradeJson, TradePageJson, WebhookAckJson } from "../schemas.js";
import { assetToJson, auditLogToJson, custodialAccountToJson, pixKeyToJson, quoteToJson, tradePageToJson, tradeToJson } from "./mapping.js";

/** Per call: the request id to forward, and a deadline other than the default (readiness probes). */
export interface CallOpts {
  requestId?: string;
  deadlineMs?: number;
  /** Cancels the call (its answer is no longer wanted: the client of a live stream went away). */
  signal?: AbortSignal;
}

export type QuoteAmount = { crypto: string } | { fiat: string };

/**
 * The coordinator's TradeService as promises of the frontend's JSON. Every call has a deadline;
 * every failure is a PonteError (the coordinator's own code, or COORDINATOR_UNAVAILABLE when
 * it cannot be reached in time).
 */
export interface Coordinator {
  ping(o?: CallOpts): Promise<{ databaseOk: boolean }>;
  listAssets(o?: CallOpts): Promise<AssetJson[]>;
  createQuote(r: { userId: string; symbol: string; network: string; amount: QuoteAmount }, o?: CallOpts): Promise<QuoteJson>;
  createTrade(
    r: { userId: string; quoteId: string; refundAddress: string; idempotencyKey: string; requestHash: string; source: string },
    o?: CallOpts,
  ): Promise<TradeJson>;
  /** userId "" reads any trade (admins); otherwise another user's trade is NOT_FOUND. */
  getTrade(r: { tradeId: string; userId: string }, o?: CallOpts): Promise<TradeJson>;
  cancelTrade(r: { tradeId: string; userId: string; actorRole: string; reason: string }, o?: CallOpts): Promise<TradeJson>;
  listTrades(r: { userId: string; limit: number; cursor: string; status: string }, o?: CallOpts): Promise<TradePageJson>;
  getAuditLog(r: { tradeId: string; userId: string }, o?: CallOpts): Promise<AuditLogJson>;
  adminConfirmPayment(r: { tradeId: string; adminId: string; reason: string }, o?: CallOpts): Promise<TradeJson>;
  adminComplete(r: { tradeId: string; adminId: string; reason: string }, o?: CallOpts): Promise<TradeJson>;
  putPixKey(
    r: { userId: string; keyType: string; key: string; holderDocument: string; holderName: string; identityDocument: string },
    o?: CallOpts,
  ): Promise<PixKeyJson>;
  getPixKey(r: { userId: string }, o?: CallOpts): Promise<PixKeyJson>;
  putCustodialAccount(r: { userId: string; network: string; address: string; derivationIndex: number }, o?: CallOpts): Promise<CustodialAccountJson>;
  getCustodialAccount(r: { userId: string; network: string }, o?: CallOpts): Promise<CustodialAccountJson>;
  /** A PIX provider's webhook, unparsed: the coordinator checks the signature on these exact bytes. */
  ingestPixWebhook(r: { provider: string; rawBody: Buffer; headers: Record<string, string> }, o?: CallOpts): Promise<WebhookAckJson>;
  close(): void;
}

export interface CoordinatorClientOptions {
  /** host:port, or any grpc-js target ("dns:///coordinator:50051" spreads calls over replicas). */
  url: string;
  deadlineMs: number;
  logger: Logger;
  registry?: Registry;
}

type Callback<Res> = (err: ServiceError | null, res: Res) => void;
type Invoke<Req, Res> = (req: Req, md: Metadata, opts: Partial<CallOptions>, cb: Callback<Res>) => ClientUnaryCall;

const DURATION = "ponte_gateway_coordinator_call_duration_seconds";

export function createCoordinatorClient(opts: CoordinatorClientOptions): Coordinator {
  const client = new tradev1.TradeServiceClient(opts.url, credentials.createInsecure(), {
    // Several coordinator replicas behind one DNS name: spread the calls (DESIGN.md §8).
    "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
  });
  const log = opts.logger.child({ component: "coordinator_client" });
  const duration =
    (opts.registry?.getSingleMetric(DURATION) as Histogram<"method" | "code"> | undefined) ??
    new Histogram({
      name: DURATION,
      help: "Calls from the gateway to the coordinator, by method and outcome (OK or the Ponte error code)",
      labelNames: ["method", "code"] as const,
      buckets: LATENCY_BUCKETS,
      registers: opts.registry ? [opts.registry] : [],
    });

  function call<Req, Res>(method: string, invoke: Invoke<Req, Res>, req: Req, o: CallOpts = {}): Promise<Res> {
    const md = new Metadata();
    if (o.requestId) md.set("x-request-id", o.requestId);
    const end = duration.startTimer({ method });
    return new Promise<Res>((resolve, reject) => {
      const cancel = () => pending.cancel();
      const pending = invoke(req, md, { deadline: Date.now() + (o.deadlineMs ?? opts.deadlineMs) }, (err, res) => {
        o.signal?.removeEventListener("abort", cancel);
        if (err) {
          const e = fromGrpcError(err);
          end({ code: e.code });
          log.debug({ method, code: e.code, grpc_code: err.code, request_id: o.requestId }, "Coordinator call failed");
          reject(e);
        } else {
          end({ code: "OK" });
          resolve(res);
        }
      });
      if (o.signal?.aborted) pending.cancel();
      else o.signal?.addEventListener("abort", cancel, { once: true });
    });
  }

  return {
    async ping(o) {
      const r = await call<tradev1.PingRequest, tradev1.PingResponse>("Ping", (q, m, c, cb) => client.ping(q, m, c, cb), {}, o);
      return { databaseOk: r.databaseOk };
    },
    async listAssets(o) {
      const r = await call<tradev1.ListAssetsRequest, tradev1.ListAssetsResponse>(
        "ListAssets", (q, m, c, cb) => client.listAssets(q, m, c, cb), {}, o);
      return r.assets.map(assetToJson);
    },
    async createQuote(r, o) {
      const amount: tradev1.CreateQuoteRequest["amount"] =
        "crypto" in r.amount ? { $case: "cryptoAmount", value: r.amount.crypto } : { $case: "fiatAmount", value: r.amount.fiat };
      const q = await call<tradev1.CreateQuoteRequest, tradev1.Quote>(
        "CreateQuote", (q, m, c, cb) => client.createQuote(q, m, c, cb),
        { userId: r.userId, symbol: r.symbol, network: r.network, amount }, o);
      return quoteToJson(q);
    },
    async createTrade(r, o) {
      return tradeToJson(
        await call<tradev1.CreateTradeRequest, tradev1.Trade>("CreateTrade", (q, m, c, cb) => client.createTrade(q, m, c, cb), r, o),
      );
    },
    async getTrade(r, o) {
      return tradeToJson(
        await call<tradev1.GetTradeRequest, tradev1.Trade>("GetTrade", (q, m, c, cb) => client.getTrade(q, m, c, cb), r, o),
      );
    },
    async cancelTrade(r, o) {
      return tradeToJson(
        await call<tradev1.CancelTradeRequest, tradev1.Trade>("CancelTrade", (q, m, c, cb) => client.cancelTrade(q, m, c, cb), r, o),
      );
    },
    async listTrades(r, o) {
      return tradePageToJson(
        await call<tradev1.ListTradesRequest, tradev1.ListTradesResponse>(
          "ListTrades", (q, m, c, cb) => client.listTrades(q, m, c, cb), r, o),
      );
    },
    async getAuditLog(r, o) {
      return auditLogToJson(
        await call<tradev1.GetAuditLogRequest, tradev1.AuditLog>("GetAuditLog", (q, m, c, cb) => client.getAuditLog(q, m, c, cb), r, o),
      );
    },
    async adminConfirmPayment(r, o) {
      return tradeToJson(
        await call<tradev1.AdminActionRequest, tradev1.Trade>(
          "AdminConfirmPayment", (q, m, c, cb) => client.adminConfirmPayment(q, m, c, cb), r, o),
      );
    },
    async adminComplete(r, o) {
      return tradeToJson(
        await call<tradev1.AdminActionRequest, tradev1.Trade>("AdminComplete", (q, m, c, cb) => client.adminComplete(q, m, c, cb), r, o),
      );
    },
    async putPixKey(r, o) {
      return pixKeyToJson(
        await call<tradev1.PutPixKeyRequest, tradev1.PixKey>("PutPixKey", (q, m, c, cb) => client.putPixKey(q, m, c, cb), r, o),
      );
    },
    async getPixKey(r, o) {
      return pixKeyToJson(
        await call<tradev1.GetPixKeyRequest, tradev1.PixKey>("GetPixKey", (q, m, c, cb) => client.getPixKey(q, m, c, cb), r, o),
      );
    },
    async putCustodialAccount(r, o) {
      return custodialAccountToJson(
        await call<tradev1.CustodialAccount, tradev1.CustodialAccount>(
          "PutCustodialAccount", (q, m, c, cb) => client.putCustodialAccount(q, m, c, cb), { ...r, createdAt: "", updatedAt: "" }, o),
      );
    },
    async getCustodialAccount(r, o) {
      return custodialAccountToJson(
        await call<tradev1.GetCustodialAccountRequest, tradev1.CustodialAccount>(
          "GetCustodialAccount", (q, m, c, cb) => client.getCustodialAccount(q, m, c, cb), r, o),
      );
    },
    async ingestPixWebhook(r, o) {
      const res = await call<tradev1.PixWebhookRequest, tradev1.PixWebhookResponse>(
        "IngestPixWebhook", (q, m, c, cb) => client.ingestPixWebhook(q, m, c, cb), r, o);
      return { received: true, duplicate: res.duplicate };
    },
    close() {
      client.close();
    },
  };
}
