import type { AgentMetrics } from "@ponte/agent-runtime";
import { delay, type Logger } from "@ponte/common";
import { endpointLabel } from "../config/index.js";

export interface RpcRequest {
  method: string;
  params: unknown[];
}

/** A JSON-RPC error answered by the node (the request reached it): the caller decides. */
export class RpcError extends Error {
  constructor(
    readonly method: string,
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(`${method}: ${message} (${code})`);
    this.name = "RpcError";
  }
}

/** The node could not be reached or answered garbage, on every endpoint, for every attempt. */
export class RpcTransportError extends Error {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = "RpcTransportError";
  }
}

export type RpcResult = { ok: true; result: unknown } | { ok: false; error: RpcError };

export interface EvmRpc {
  /** One call; a JSON-RPC error throws RpcError. */
  call<T>(method: string, params: unknown[]): Promise<T>;
  /** Many calls in JSON-RPC batches (split at rpcBatchSize, bounded in flight); results in order. */
  batch(requests: RpcRequest[]): Promise<RpcResult[]>;
  /** Like batch, but any JSON-RPC error throws. */
  batchOrThrow<T>(requests: RpcRequest[]): Promise<T[]>;
  readonly endpoint: string;
}

interface Options {
  urls: string[];
  timeoutMs: number;
  maxInFlight: number;
  maxBatchSize: number;
  metrics: AgentMetrics;
  signal: AbortSignal;
  /** Transport attempts per request across all endpoints before giving up (default 2 rounds). */
  attempts?: number;
}

/** JSON-RPC -32601: the node lacks the method (e.g. eth_getBlockReceipts on older nodes). */
export const METHOD_NOT_FOUND = -32601;

/**
 * A small fetch-based JSON-RPC client: raw batches, a concurrency bound, failover between
 * endpoints on transport errors (timeouts, 5xx, 429, unparseable bodies), latency metrics by
 * method. Chosen over ethers' JsonRpcProvider: it was faster here (see README) and gives us
 * per-item errors, which the getLogs range shrinking needs.
 */
export function createEvmRpc(common: { logger: Logger }, o: Options): EvmRpc {
  if (o.urls.length === 0) throw new Error("no RPC endpoint");
  const logger = common.logger;
  let current = 0;
  let nextId = 1;
  let inFlight = 0;
  const queue: (() => void)[] = [];
  const acquire = async () => {
    if (inFlight < o.maxInFlight) {
      inFlight++;
      return;
    }
    await new Promise<void>((resolve) => queue.push(resolve));
  };
  const release = () => {
    const next = queue.shift();
    if (next) next();
    else inFlight--;
  };

  const post = async (url: string, body: string, label: string): Promise<unknown> => {
    const started = performance.now();
    let ok = false;
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        signal: AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)]),
      });
      const text = await res.text();
      if (!res.ok) throw new RpcTransportError(`HTTP ${res.status} from ${endpointLabel(url)}`);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        throw new RpcTransportError(`unparseable JSON from ${endpointLabel(url)}`, { cause: err });
      }
      ok = true;
      return json;
    } finally {
      o.metrics.observeRpc(label, (performance.now() - started) / 1_000, ok);
    }
  };

  /** One HTTP request carrying `requests`; transport failures fail over and back off. */
  const send = async (requests: RpcRequest[]): Promise<RpcResult[]> => {
    const ids = requests.map(() => nextId++);
    const single = requests.length === 1;
    const payload = requests.map((r, i) => ({ jsonrpc: "2.0", id: ids[i], method: r.method, params: r.params }));
    const body = JSON.stringify(single ? payload[0] : payload);
    const label = requests.every((r) => r.method === requests[0]!.method) ? requests[0]!.method : "batch";
    const attempts = o.attempts ?? Math.max(2, o.urls.length * 2);
    let lastErr: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const idx = current;
      const url = o.urls[idx]!;
      let json: unknown;
      let failed = false;
      await acquire();
      try {
        json = await post(url, body, label);
      } catch (err) {
        lastErr = err;
        failed = true;
      } finally {
        release();
      }
      if (failed) {
        if (o.signal.aborted) throw lastErr;
        // Fail over: the next request (this one's retry included) goes to the next endpoint.
        if (current === idx) current = (idx + 1) % o.urls.length;
        logger.warn({ err: lastErr, endpoint: endpointLabel(url), method: label, attempt }, "RPC request failed; failing over");
        if (attempt < attempts) await delay(Math.min(5_000, 100 * 2 ** (attempt - 1)), o.signal);
        continue;
      }
      const items = Array.isArray(json) ? json : [json];
      const byId = new Map<unknown, { result?: unknown; error?: { code?: number; message?: string; data?: unknown } }>();
      for (const it of items) if (it && typeof it === "object" && "id" in it) byId.set((it as { id: unknown }).id, it);
      // A batch answered by one error object (e.g. "batch too large") carries no ids.
      if (!single && byId.size === 0 && json && typeof json === "object" && "error" in json) {
        return splitAndRetry(requests);
      }
      const out: RpcResult[] = [];
      let missing = false;
      requests.forEach((r, i) => {
        const it = byId.get(ids[i]) ?? (single && items.length === 1 ? items[0] : undefined);
        if (!it) {
          missing = true;
          return;
        }
        if (it.error) out.push({ ok: false, error: new RpcError(r.method, it.error.code ?? 0, it.error.message ?? "error", it.error.data) });
        else out.push({ ok: true, result: it.result });
      });
      if (!missing) return out;
      lastErr = new RpcTransportError(`incomplete batch response from ${endpointLabel(url)}`);
      if (current === idx) current = (idx + 1) % o.urls.length;
      await delay(Math.min(5_000, 100 * 2 ** attempt), o.signal);
    }
    throw new RpcTransportError(`RPC failed on every endpoint: ${(lastErr as Error)?.message ?? "unknown"}`, { cause: lastErr });
  };

  const splitAndRetry = async (requests: RpcRequest[]): Promise<RpcResult[]> => {
    const mid = Math.ceil(requests.length / 2);
    const [a, b] = await Promise.all([send(requests.slice(0, mid)), send(requests.slice(mid))]);
    return [...a, ...b];
  };

  const batch = async (requests: RpcRequest[]): Promise<RpcResult[]> => {
    if (requests.length === 0) return [];
    const chunks: RpcRequest[][] = [];
    for (let i = 0; i < requests.length; i += o.maxBatchSize) chunks.push(requests.slice(i, i + o.maxBatchSize));
    const results = await Promise.all(chunks.map((c) => send(c)));
    return results.flat();
  };

  return {
    get endpoint() {
      return endpointLabel(o.urls[current]!);
    },
    async call<T>(method: string, params: unknown[]) {
      const [r] = await send([{ method, params }]);
      if (!r!.ok) throw r!.error;
      return r!.result as T;
    },
    batch,
    async batchOrThrow<T>(requests: RpcRequest[]) {
      const rs = await batch(requests);
      return rs.map((r) => {
        if (!r.ok) throw r.error;
        return r.result as T;
      });
    },
  };
}

export const toHex = (n: bigint | number): string => `0x${n.toString(16)}`;
