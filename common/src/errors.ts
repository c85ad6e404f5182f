// One error tree with a stable code. Transports map codes to their statuses (HTTP in the
// gateway, gRPC in grpc.ts); nothing classifies errors by message text.
export const ErrorCodes = {
  VALIDATION_ERROR: 422,
  INVALID_JSON: 400,
  INVALID_ID: 400,
  INVALID_AMOUNT: 422,
  AMOUNT_TOO_SMALL: 422,
  AMOUNT_TOO_LARGE: 422,
  INVALID_ADDRESS: 400,
  INVALID_PIX_KEY: 422,
  HOLDER_DOCUMENT_MISMATCH: 422,
  ASSET_NOT_FOUND: 422,
  ASSET_DISABLED: 422,
  DAILY_LIMIT_EXCEEDED: 422,
  PAYLOAD_TOO_LARGE: 413,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  TRADE_NOT_FOUND: 404,
  QUOTE_NOT_FOUND: 404,
  PIX_KEY_NOT_FOUND: 404,
  QUOTE_EXPIRED: 409,
  QUOTE_ALREADY_USED: 409,
  IDEMPOTENCY_KEY_REUSED: 409,
  INVALID_STATE: 409,
  STALE_STATE: 409,
  LEASE_LOST: 409,
  PIX_KEY_REQUIRED: 409,
  CUSTODIAL_ACCOUNT_NOT_FOUND: 409,
  NO_DEPOSIT_ADDRESS: 503,
  PRICE_UNAVAILABLE: 503,
  COORDINATOR_UNAVAILABLE: 503,
  UNAVAILABLE: 503,
  INTERNAL: 500,
  // PIX provider adapters (coordinator/src/payout/provider)
  WEBHOOK_SIGNATURE_INVALID: 401,
  WEBHOOK_STALE: 401,
  PROVIDER_REJECTED: 422,
  PROVIDER_AUTH_FAILED: 502,
  // Agent key sources (agents/runtime/src/keys): Vault KV v2 or a local keystore file
  KEY_SOURCE_UNAVAILABLE: 503,
  KEY_SOURCE_DENIED: 403,
  KEY_SOURCE_NOT_FOUND: 404,
  KEY_SOURCE_INVALID: 422,
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class PonteError extends Error {
  readonly retryable: boolean = false;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    opts?: { cause?: unknown },
  ) {
    super(message, opts);
    this.name = new.target.name;
  }
  get httpStatus(): number {
    return ErrorCodes[this.code];
  }
}

export class RetryableError extends PonteError {
  override readonly retryable: boolean = true;
}

export const isErrorCode = (s: string): s is ErrorCode => Object.hasOwn(ErrorCodes, s);
