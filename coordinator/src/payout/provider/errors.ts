// How a provider call can end, as the payout state machine needs to tell the cases apart.
// Classify with instanceof (or by code), never by message text.
import { PonteError, RetryableError } from "@ponte/common";

export interface ProviderErrorDetails extends Record<string, unknown> {
  provider: string;
  op: string;
  /** HTTP status when there was a response. */
  status?: number;
}

/** The provider could not be reached or answered badly; a read can simply be retried. */
export class ProviderUnavailableError extends RetryableError {
  constructor(message: string, details: ProviderErrorDetails & { reason: string }, opts?: { cause?: unknown }) {
    super("UNAVAILABLE", message, details, opts);
  }
}

/**
 * A create whose outcome is unknown (timeout, connection reset, 5xx, unreadable answer): the payout
 * may or may not exist. Resolve with getPayout on the same key — never send again under a new one.
 */
export class ProviderAmbiguousError extends ProviderUnavailableError {}

/** The provider definitively refused the request (4xx): nothing was created by this call. */
export class ProviderRejectedError extends PonteError {
  constructor(
    message: string,
    details: ProviderErrorDetails & { errors: { code: string; message: string }[] },
    opts?: { cause?: unknown },
  ) {
    super("PROVIDER_REJECTED", message, details, opts);
  }
  get providerErrors(): { code: string; message: string }[] {
    return (this.details as { errors: { code: string; message: string }[] }).errors;
  }
}

/**
 * Our credentials were refused (401/403). Definitive for this call and nothing was created, but it
 * says nothing about the payout itself: alert and hold, don't fail the trade.
 */
export class ProviderAuthError extends PonteError {
  constructor(message: string, details: ProviderErrorDetails & { errors: { code: string; message: string }[] }) {
    super("PROVIDER_AUTH_FAILED", message, details);
  }
}

export class WebhookVerificationError extends PonteError {
  constructor(
    code: "WEBHOOK_SIGNATURE_INVALID" | "WEBHOOK_STALE",
    message: string,
    details: { provider: string; reason: string } & Record<string, unknown>,
  ) {
    super(code, message, details);
  }
}
