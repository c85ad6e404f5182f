// A small fetch-based JSON-RPC client for Bitcoin Core-compatible nodes: basic auth from
// user/password or the node's cookie file (re-read when the node restarts and rotates it), raw
// batches, a bound on requests in flight (the node's -rpcworkqueue refuses the rest with
// "Work queue depth exceeded", HTTP 503), latency metrics by method. Amounts stay exact: the
// decimal fields are read as strings, never as floats.
import { readFile } from "node:fs/promises";
import type { AgentMetrics } from "@ponte/agent-runtime";
import { RetryableError, type Logger } from "@ponte/common";
import { endpointLabel, type RpcAuth } from "../config/index.js";

export interface RpcRequest {
  method: string;
  params: unknown[];
}

/** A JSON-RPC error answered by the node: the caller decides by code. */
export class RpcError extends Error {
  constructor(
    readonly method: string,
    readonly code: number,
    message: string,
  ) {
    super(`${method}: ${message} (${code})`);
    this.name = "RpcError";
  }
}

/**
 * The node could not be reached, was busy (work queue full, warming up) or answered garbage.
 * Retryable: nothing was skipped, the caller backs off and asks again.
 */
export class RpcUnavailableError extends RetryableError {
  constructor(message: string, reason: string, opts?: { cause?: unknown }) {
    super("UNAVAILABLE", message, { reason }, opts);
  }
}

// Bitcoin Core's RPC error codes the agent acts on (src/rpc/protocol.h).
export const RPC_INVALID_ADDRESS_OR_KEY = -5; // no such transaction / block
export const RPC_INVALID_PARAMETER = -8; // e.g. block height out of range
export const RPC_IN_WARMUP = -28;
export const RPC_VERIFY_ERROR = -25; // missing inputs
export const RPC_VERIFY_REJECTED = -26;
export const RPC_VERIFY_ALREADY_IN_CHAIN = -27;

export type RpcResult<T = unknown> = { ok: true; result: T } | { ok: false; error: RpcError };

export interface UtxoRpc {
  call<T>(method: string, params?: unknown[]): Promise<T>;
  /** Many calls in batches of rpcBatchSize, at most maxInFlight HTTP requests at once; results in order. */
  batch<T = unknown>(requests: RpcRequest[]): Promise<RpcResult<T>[]>;
  batchOrThrow<T>(requests: RpcRequest[]): Promise<T[]>;
  /** GET on the REST interface (JSON); null on 404. */
  rest<T>(path: string): Promise<T | null>;
  readonly endpoint: string;
}

/** Decimal amounts the node prints as JSON numbers; read as their exact text. */
const DECIMAL_FIELDS = /"(value|feerate|fee|fees|amount|vsize_fee|base|modified|ancestor|descendant|total_amount|relayfee|incrementalfee|mempoolminfee|minrelaytxfee|total_fee)":\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)/g;
export const parseExact = (text: string): unknown => JSON.parse(text.replace(DECIMAL_FIELDS, '"$1":"$2"'));

/** "0.00100000" (whole coins, as the node prints them) → satoshis, exactly. */
export function coinsToSats(v: string | number): bigint {
  const s = typeof v === "number" ? v.toFixed(8) : v;
  const m = /^(-?)(\d+)(?:\.(\d{1,8}))?$/.exec(s);
  if (!m) throw new Error(`not an amount of at most 8 decimals: ${s}`);
  const sats = BigInt(m[2]!) * 100_000_000n + BigInt((m[3] ?? "").padEnd(8, "0"));
  return m[1] ? -sats : sats;
}

interface Options {
  url: string;
  auth: RpcAuth;
  restUrl?: string | null;
  timeoutMs: number;
  maxInFlight: number;
  batchSize: number;
  metrics?: AgentMetrics;
  signal?: AbortSignal;
  logger: Logger;
}

export function createUtxoRpc(o: Options): UtxoRpc {
  const url = new URL(o.url);
  url.username = "";
  url.password = "";
  const target = url.toString();
  let authHeader: string | undefined;
  let inFlight = 0;
  const queue: (() => void)[] = [];
  const acquire = async () => {
    if (inFlight < o.maxInFlight) {
      inFlight++;
      return;
    }
    await new Promise<void>((r) => queue.push(r));
  };
  const release = () => {
    const next = queue.shift();
    if (next) next();
    else inFlight--;
  };

  const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
  async function header(refresh = false): Promise<string | undefined> {
    if (authHeader && !refresh) return authHeader;
    if (o.auth.kind === "password") authHeader = basic(o.auth.user, o.auth.password);
    else if (o.auth.kind === "cookie") {
      let cookie: string;
      try {
        cookie = (await readFile(o.auth.file, "utf8")).trim();
      } catch (err) {
        // The node writes the cookie at start: missing means it is down (or the path is wrong).
        throw new RpcUnavailableError(`cannot read the node's cookie file ${o.auth.file}: ${(err as Error).message}`, "cookie_unreadable", { cause: err });
      }
      const i = cookie.indexOf(":");
      authHeader = basic(cookie.slice(0, i), cookie.slice(i + 1));
    } else if (new URL(o.url).username) {
      const u = new URL(o.url);
      authHeader = basic(decodeURIComponent(u.username), decodeURIComponent(u.password));
    }
    return authHeader;
  }

  async function post(body: unknown, label: string): Promise<unknown> {
    await acquire();
    const started = performance.now();
    let ok = false;
    try {
      for (let authTry = 0; ; authTry++) {
        const headers: Record<string, string> = { "content-type": "application/json" };
        const h = await header(authTry > 0);
        if (h) headers.authorization = h;
        let res: Response;
        try {
          const signals = [AbortSignal.timeout(o.timeoutMs)];
          if (o.signal) signals.push(o.signal);
          res = await fetch(target, { method: "POST", headers, body: JSON.stringify(body), signal: AbortSignal.any(signals) });
        } catch (err) {
          throw new RpcUnavailableError(`${label}: the node at ${endpointLabel(o.url)} is unreachable: ${(err as Error).message}`, "node_unreachable", { cause: err });
        }
        const text = await res.text();
        if (res.status === 401 && o.auth.kind === "cookie" && authTry === 0) continue; // a restarted node rotated its cookie
        if (res.status === 401 || res.status === 403) throw new RpcUnavailableError(`${label}: the node refused the RPC credentials (HTTP ${res.status})`, "rpc_auth");
        let parsed: unknown;
        try {
          parsed = parseExact(text);
        } catch (err) {
          // -rpcworkqueue exhausted: the HTTP layer answers before JSON-RPC, with a plain-text
          // "Work queue depth exceeded" (HTTP 503 in Bitcoin Core, 500 in Litecoin Core 0.21).
          // A 5xx without a JSON-RPC body is that: back off briefly, skip nothing.
          if (res.status >= 500) throw new RpcUnavailableError(`${label}: the node is busy (HTTP ${res.status}: ${text.trim().slice(0, 80)})`, "work_queue_full");
          throw new RpcUnavailableError(`${label}: unparseable answer (HTTP ${res.status})`, "bad_response", { cause: err });
        }
        ok = res.ok;
        return parsed;
      }
    } finally {
      o.metrics?.observeRpc(label, (performance.now() - started) / 1000, ok);
      release();
    }
  }

  type Reply = { result?: unknown; error?: { code: number; message: string } | null; id?: number };
  const toResult = (method: string, r: Reply | undefined): RpcResult => {
    if (!r) return { ok: false, error: new RpcError(method, 0, "no answer in the batch") };
    if (r.error) {
      if (r.error.code === RPC_IN_WARMUP) throw new RpcUnavailableError(`${method}: the node is warming up: ${r.error.message}`, "warming_up");
      return { ok: false, error: new RpcError(method, r.error.code, r.error.message) };
    }
    return { ok: true, result: r.result };
  };

  const self: UtxoRpc = {
    endpoint: endpointLabel(o.url),
    async call<T>(method: string, params: unknown[] = []) {
      const reply = (await post({ jsonrpc: "1.0", id: 0, method, params }, method)) as Reply;
      const r = toResult(method, reply);
      if (!r.ok) throw r.error;
      return r.result as T;
    },
    async batch<T>(requests: RpcRequest[]) {
      const chunks: RpcRequest[][] = [];
      for (let i = 0; i < requests.length; i += o.batchSize) chunks.push(requests.slice(i, i + o.batchSize));
      const answers = await Promise.all(
        chunks.map(async (chunk) => {
          const label = chunk.every((r) => r.method === chunk[0]!.method) ? `batch:${chunk[0]!.method}` : "batch";
          const replies = (await post(chunk.map((r, id) => ({ jsonrpc: "1.0", id, method: r.method, params: r.params })), label)) as Reply[];
          if (!Array.isArray(replies)) throw new RpcUnavailableError(`${label}: the node did not answer the batch with an array`, "bad_response");
          const byId = new Map(replies.map((r) => [r.id, r]));
          return chunk.map((r, id) => toResult(r.method, byId.get(id)));
        }),
      );
      return answers.flat() as RpcResult<T>[];
    },
    async batchOrThrow<T>(requests: RpcRequest[]) {
      return (await self.batch<T>(requests)).map((r) => {
        if (!r.ok) throw r.error;
        return r.result;
      });
    },
    async rest<T>(path: string) {
      if (!o.restUrl) throw new Error("no rest_url configured");
      await acquire();
      const started = performance.now();
      let ok = false;
      try {
        const signals = [AbortSignal.timeout(o.timeoutMs)];
        if (o.signal) signals.push(o.signal);
        let res: Response;
        try {
          res = await fetch(new URL(path, o.restUrl), { signal: AbortSignal.any(signals) });
        } catch (err) {
          throw new RpcUnavailableError(`REST ${path.split("/")[2] ?? path}: the node is unreachable: ${(err as Error).message}`, "node_unreachable", { cause: err });
        }
        const text = await res.text();
        if (res.status === 404) return null;
        if (res.status >= 500 && !text.trimStart().startsWith("{")) throw new RpcUnavailableError(`REST: the node is busy (HTTP ${res.status})`, "work_queue_full");
        if (!res.ok) throw new RpcUnavailableError(`REST: HTTP ${res.status}: ${text.slice(0, 80)}`, "bad_response");
        ok = true;
        return parseExact(text) as T;
      } finally {
        o.metrics?.observeRpc(`rest:${path.split("/")[2] ?? "?"}`, (performance.now() - started) / 1000, ok);
        release();
      }
    },
  };
  return self;
}
