// A small signed HTTP client for Stark Bank's API v2 on global fetch. It signs every request,
// bounds it with a timeout, and sorts outcomes into: a parsed 2xx body, a definitive 4xx, or a
// thrown error that says whether the outcome is unknown (see ../errors.ts).
import type { KeyObject } from "node:crypto";
import type { Logger } from "@ponte/common";
import { safeUrl } from "@ponte/common";
import { ProviderAmbiguousError, ProviderAuthError, ProviderUnavailableError } from "../errors.js";
import { signMessage } from "./signing.js";

export const PROVIDER = "starkbank";

export interface StarkbankClientOptions {
  /** API root without the version, e.g. "https://sandbox.api.starkbank.com". */
  baseUrl: string;
  /** "project/<id>" or "organization/<id>[/workspace/<id>]". */
  accessId: string;
  privateKey: KeyObject;
  timeoutMs: number;
  logger: Logger;
  /** Aborts in-flight calls on shutdown. */
  signal?: AbortSignal;
  now?: () => number;
}

export interface ApiError {
  code: string;
  message: string;
}

export type ApiResult = { ok: true; status: number; body: unknown } | { ok: false; status: number; errors: ApiError[] };

export interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  /**
   * True for calls that change state (creating a transfer): a failure without a definitive answer
   * is then a ProviderAmbiguousError rather than a plain ProviderUnavailableError.
   */
  mutating?: boolean;
}

export class StarkbankClient {
  private readonly base: string;
  private readonly now: () => number;

  constructor(private readonly o: StarkbankClientOptions) {
    this.base = o.baseUrl.replace(/\/+$/, "") + "/v2";
    this.now = o.now ?? Date.now;
  }

  /** The headers Stark Bank authenticates a request by: ECDSA over "<accessId>:<accessTime>:<body>". */
  authHeaders(body: string): Record<string, string> {
    const accessTime = String(Math.floor(this.now() / 1000));
    return {
      "Access-Id": this.o.accessId,
      "Access-Time": accessTime,
      "Access-Signature": signMessage(this.o.privateKey, `${this.o.accessId}:${accessTime}:${body}`),
    };
  }

  async request(op: string, method: "GET" | "POST", path: string, opts: RequestOptions = {}): Promise<ApiResult> {
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    // The exact string sent is the string signed.
    const body = opts.body === undefined ? "" : JSON.stringify(opts.body);
    const Fail = opts.mutating ? ProviderAmbiguousError : ProviderUnavailableError;
    const started = performance.now();
    const signals = [AbortSignal.timeout(this.o.timeoutMs)];
    if (this.o.signal) signals.push(this.o.signal);

    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method,
        headers: {
          ...this.authHeaders(body),
          "Content-Type": "application/json",
          "Accept-Language": "en-US",
          "User-Agent": "ponte-payouts",
        },
        body: method === "POST" ? body : undefined,
        signal: AbortSignal.any(signals),
      });
      text = await res.text();
    } catch (err) {
      const reason = isTimeout(err) ? "timeout" : isAbort(err) ? "aborted" : "network";
      this.o.logger.warn(
        { op, reason, url: safeUrl(url.toString()), duration_ms: Math.round(performance.now() - started), err },
        "Stark Bank call failed without an answer",
      );
      throw new Fail(`Stark Bank ${op}: no answer (${reason})`, { provider: PROVIDER, op, reason }, { cause: err });
    }

    const duration_ms = Math.round(performance.now() - started);
    this.o.logger.debug({ op, status: res.status, duration_ms }, "Stark Bank call");
    const parsed = parseJson(text);

    if (res.status >= 200 && res.status < 300) {
      if (parsed === undefined) {
        throw new Fail(`Stark Bank ${op}: unreadable answer`, { provider: PROVIDER, op, status: res.status, reason: "bad_response" });
      }
      return { ok: true, status: res.status, body: parsed };
    }
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      this.o.logger.warn({ op, status: res.status, duration_ms }, "Stark Bank answered with a transient error");
      throw new Fail(`Stark Bank ${op}: HTTP ${res.status}`, {
        provider: PROVIDER,
        op,
        status: res.status,
        reason: res.status >= 500 ? "http_5xx" : `http_${res.status}`,
      });
    }
    const errors = readErrors(parsed);
    if (res.status === 401 || res.status === 403) {
      this.o.logger.error({ op, status: res.status, errors }, "Stark Bank refused our credentials");
      throw new ProviderAuthError(`Stark Bank ${op}: credentials refused (HTTP ${res.status})`, {
        provider: PROVIDER,
        op,
        status: res.status,
        errors,
      });
    }
    return { ok: false, status: res.status, errors };
  }
}

function parseJson(text: string): unknown {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // An unreadable body is reported by the caller as bad_response/unknown errors.
    return undefined;
  }
}

/** Stark Bank's error body: {"errors": [{"code": "...", "message": "..."}]}. */
function readErrors(body: unknown): ApiError[] {
  const list = (body as { errors?: unknown } | undefined)?.errors;
  if (!Array.isArray(list)) return [{ code: "unknown", message: "no error details in the answer" }];
  return list.map((e) => {
    const o = (e ?? {}) as { code?: unknown; message?: unknown };
    return {
      code: typeof o.code === "string" ? o.code : "unknown",
      message: typeof o.message === "string" ? o.message : "",
    };
  });
}

const isTimeout = (err: unknown): boolean => err instanceof DOMException && err.name === "TimeoutError";
const isAbort = (err: unknown): boolean => err instanceof DOMException && err.name === "AbortError";
