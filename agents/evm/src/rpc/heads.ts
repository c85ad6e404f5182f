import type { AgentMetrics } from "@ponte/agent-runtime";
import { childLogger, delay, type Logger } from "@ponte/common";
import WebSocket from "ws";
import { endpointLabel } from "../config/index.js";
import { toHeader, type Header } from "./types.js";

/**
 * New heads by ws `eth_subscribe("newHeads")`, reconnecting with backoff and rotating
 * endpoints. Heads only wake the follower: it re-reads the chain over HTTP and tracks blocks by
 * hash, because a node's head events repeat heights after a reorg (anvil: 4,5,6,7,6,…).
 */
export interface HeadWatcher {
  readonly connected: boolean;
  readonly latest: Header | undefined;
  /**
   * The newest head the subscription delivered, once: undefined when none arrived since the last
   * take() (or the socket is down), so the caller then reads the head over HTTP.
   */
  take(): Header | undefined;
  /** Counts the heads delivered: read it before looking at the chain, and pass it to next(). */
  readonly seq: number;
  /**
   * Resolves at the first head after `seen` (a `seq` read before the caller looked at the chain:
   * at once if one came meanwhile, rather than sleeping through it), after timeoutMs, or when
   * signal aborts.
   */
  next(timeoutMs: number, signal: AbortSignal, seen: number): Promise<void>;
  /** Closes the current socket (tests: a dropped connection). */
  dropConnection(): void;
  stop(): Promise<void>;
}

export function createHeadWatcher(
  common: { logger: Logger },
  o: { urls: string[]; metrics: AgentMetrics; network: string; pingIntervalMs?: number },
): HeadWatcher {
  const logger = childLogger(common.logger, { network: o.network });
  const stopAc = new AbortController();
  let socket: WebSocket | undefined;
  let connected = false;
  let latest: Header | undefined;
  /** latest arrived since the last take(). */
  let fresh = false;
  let seq = 0;
  let waiters: (() => void)[] = [];
  const wakeAll = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };

  const connectOnce = (url: string) =>
    new Promise<void>((resolve) => {
      const ws = new WebSocket(url, { handshakeTimeout: 10_000 });
      socket = ws;
      let alive = true;
      const ping = setInterval(() => {
        // No pong since the last ping: the connection is dead without having said so.
        if (!alive) return ws.terminate();
        alive = false;
        ws.ping();
      }, o.pingIntervalMs ?? 15_000);
      ws.on("pong", () => (alive = true));
      ws.on("open", () => {
        ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_subscribe", params: ["newHeads"] }));
      });
      ws.on("message", (data) => {
        alive = true;
        let msg: { id?: number; result?: unknown; error?: { message?: string }; method?: string; params?: { result?: unknown } };
        try {
          msg = JSON.parse(data.toString()) as typeof msg;
        } catch {
          logger.warn({ endpoint: endpointLabel(url) }, "Unparseable ws message; ignored");
          return;
        }
        if (msg.id === 1) {
          if (msg.error) {
            logger.warn({ endpoint: endpointLabel(url), error: msg.error.message }, "newHeads subscription refused");
            ws.close();
            return;
          }
          connected = true;
          logger.info({ endpoint: endpointLabel(url) }, "Subscribed to new heads");
          // Heads may have come and gone while disconnected: let the follower look now.
          wakeAll();
          return;
        }
        if (msg.method === "eth_subscription" && msg.params?.result) {
          try {
            latest = toHeader(msg.params.result as Parameters<typeof toHeader>[0]);
            fresh = true;
            seq++;
            o.metrics.setHead(latest.height);
          } catch {
            return;
          }
          wakeAll();
        }
      });
      ws.on("error", (err) => logger.warn({ err: { message: err.message }, endpoint: endpointLabel(url) }, "ws error"));
      ws.on("close", () => {
        clearInterval(ping);
        connected = false;
        fresh = false;
        socket = undefined;
        resolve();
      });
    });

  const loop = async () => {
    let i = 0;
    let failures = 0;
    while (!stopAc.signal.aborted) {
      const url = o.urls[i % o.urls.length]!;
      const started = Date.now();
      await connectOnce(url);
      if (stopAc.signal.aborted) break;
      // A connection that lived a while resets the backoff; quick failures back off and rotate.
      failures = Date.now() - started > 30_000 ? 0 : failures + 1;
      i++;
      logger.warn({ endpoint: endpointLabel(url), attempt: failures }, "ws connection closed; reconnecting (polling meanwhile)");
      wakeAll();
      await delay(Math.min(10_000, 200 * 2 ** Math.min(failures, 6)), stopAc.signal);
    }
  };
  const done = o.urls.length > 0 ? loop() : Promise.resolve();

  return {
    get connected() {
      return connected;
    },
    get latest() {
      return latest;
    },
    take() {
      if (!fresh || !connected) return undefined;
      fresh = false;
      return latest;
    },
    get seq() {
      return seq;
    },
    next(timeoutMs, signal, seen) {
      if (seq !== seen) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const finish = () => {
          clearTimeout(t);
          signal.removeEventListener("abort", finish);
          const i = waiters.indexOf(finish);
          if (i >= 0) waiters.splice(i, 1);
          resolve();
        };
        const t = setTimeout(finish, timeoutMs);
        signal.addEventListener("abort", finish, { once: true });
        waiters.push(finish);
      });
    },
    dropConnection() {
      socket?.terminate();
    },
    async stop() {
      stopAc.abort();
      socket?.close();
      socket?.terminate();
      wakeAll();
      await done;
    },
  };
}
