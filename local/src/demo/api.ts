// The slice of the gateway's HTTP API the demo uses, as the desk's frontend would call it.

export interface Asset {
  symbol: string;
  network: string;
  decimals: number;
  contract: string | null;
  min_amount: string;
  max_amount: string;
  confirmations: number;
  enabled: boolean;
  price: string | null;
}

export interface Quote {
  quote_id: string;
  crypto_amount: string;
  fiat_amount: string;
  price: string;
  spread: string;
  network_fee: string;
  expires_at: string;
}

export interface Trade {
  id: string;
  status: string;
  symbol: string;
  network: string;
  crypto_amount: string;
  fiat_amount: string;
  deposit_address: string;
  received_amount: string;
  confirmed_amount: string;
  payout_amount: string | null;
  payout_status: string | null;
  payout_end_to_end_id: string | null;
}

/** A sweep, refund or gas top-up of the trade's funds (listed with the audit log). */
export interface TransferRecord {
  order_id: string;
  kind: string;
  status: string;
  from_address: string;
  to_address: string;
  /** The token moved; empty or null for the native coin. */
  contract?: string | null;
  amount_base_units: string;
  tx_hash: string;
  fee_base_units?: string;
  reason?: string | null;
}

export interface AuditLog {
  entries: AuditEntry[];
  /** Absent from gateways that do not list transfers yet. */
  transfers?: TransferRecord[];
}

export interface AuditEntry {
  id: number;
  from_status: string | null;
  to_status: string;
  actor: string;
  reason: string | null;
  created_at: string;
  data: Record<string, string>;
}

/** An answer of the API that is not a success, with its stable error code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message} (HTTP ${status})`);
    this.name = "ApiError";
  }
}

/** The gateway did not answer at all (nothing listening, or it hung). */
export class UnreachableError extends Error {
  constructor(
    readonly url: string,
    readonly why: string,
  ) {
    super(`${url} does not answer (${why})`);
    this.name = "UnreachableError";
  }
}

export function createApi(baseUrl: string, token: string) {
  async function call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      throw new UnreachableError(baseUrl, cause?.code ?? (err as Error).message);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiError(res.status, e?.code ?? "HTTP_ERROR", e?.message ?? text.slice(0, 200));
    }
    return json as T;
  }
  return {
    ready: async (): Promise<boolean> => {
      try {
        const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(5_000) });
        return res.ok;
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause;
        throw new UnreachableError(baseUrl, cause?.code ?? (err as Error).message);
      }
    },
    putPixKey: (b: { key_type: string; key: string; holder_document: string; holder_name: string }) =>
      call<unknown>("PUT", "/api/v1/users/me/pix-key", b),
    assets: () => call<{ assets: Asset[] }>("GET", "/api/v1/instant-trade/assets"),
    quote: (b: { symbol: string; network: string; crypto_amount: string }) => call<Quote>("POST", "/api/v1/instant-trade/quote", b),
    create: (b: { quote_id: string; refund_address: string }, idempotencyKey: string) =>
      call<Trade>("POST", "/api/v1/instant-trade/create", b, { "Idempotency-Key": idempotencyKey }),
    trade: (id: string) => call<Trade>("GET", `/api/v1/instant-trade/${id}`),
    auditLog: (id: string) => call<AuditLog>("GET", `/api/v1/instant-trade/${id}/audit-log`),
  };
}

export type Api = ReturnType<typeof createApi>;
