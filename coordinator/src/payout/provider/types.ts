// The contract between the payout state machine and a PIX payout provider. Provider-agnostic:
// an adapter (Stark Bank first; Woovi/OpenPix or Efí later) maps its API onto these shapes and
// onto the error classes in errors.ts. BRL amounts are bigint centavos.
import type { PixKeyType } from "@ponte/common";

export type PayoutStatus = "created" | "processing" | "success" | "failed" | "returned";

/** Final as far as paying is concerned: success may still turn into returned (MED, chargeback). */
export const TERMINAL_PAYOUT_STATUSES: readonly PayoutStatus[] = ["success", "failed", "returned"];

/** The account behind a PIX key, as the provider's DICT lookup reports it. */
export interface KeyOwner {
  /** The key as looked up. */
  key: string;
  keyType: PixKeyType;
  holderName: string;
  /**
   * CPF or CNPJ as the provider shows it: CPFs come masked ("***.456.789-**"), CNPJs in full.
   * Compare with matchesMaskedTaxId(); never send it as the payee's document.
   */
  taxId: string;
  taxIdMasked: boolean;
  ownerType: "natural" | "legal" | "unknown";
  /** ISPB of the holder's institution (8 digits): a PIX transfer is addressed by it. */
  ispb: string;
  bankName?: string;
  branch: string;
  account: string;
  /** "checking" | "savings" | "salary" | "payment" (DICT account types). */
  accountType: string;
}

export interface PayoutRequest {
  /** Our idempotency key; the provider stores it (Stark Bank: externalId). Committed before the call. */
  ourKey: string;
  amountCentavos: bigint;
  pixKey: string;
  /** From resolveKey(pixKey), already checked against the seller. */
  keyOwner: KeyOwner;
  /**
   * The payee's full CPF/CNPJ (digits, or alphanumeric CNPJ) — the seller's document, which the
   * caller matched against keyOwner. Needed because DICT lookups mask CPFs.
   */
  holderTaxId: string;
  /** Shown on the payee's statement where the provider supports it. */
  description?: string;
  /** Extra lowercase labels for the provider's search (ours are added by the adapter). */
  tags?: string[];
}

export interface PayoutDestination {
  name: string;
  taxId: string;
  bankCode: string;
  branch: string;
  account: string;
  accountType?: string;
}

export interface ProviderPayout {
  provider: string;
  providerId: string;
  /** null: a payout made outside Ponte (seen by listPayouts only). */
  ourKey: string | null;
  amountCentavos: bigint;
  status: PayoutStatus;
  /** The provider's raw status word, for logs and the audit trail. */
  providerStatus: string;
  failureReason?: string;
  /** Banco Central end-to-end id, once the provider has one. */
  endToEndId?: string;
  destination: PayoutDestination;
  feeCentavos?: bigint;
  tags: string[];
  createdAt: Date;
  updatedAt: Date;
}

export interface PayoutWebhookEvent {
  type: "payout";
  provider: string;
  /** Unique per event; de-duplicate on it. Retries of one event keep the id. */
  eventId: string;
  ourKey: string | null;
  providerId: string;
  status: PayoutStatus;
  /** The provider's event/log type ("processing", "success", …). */
  providerEventType: string;
  failureReason?: string;
  createdAt: Date;
}

/** A verified event about something other than payouts (e.g. deposits): acknowledge and ignore. */
export interface OtherWebhookEvent {
  type: "other";
  provider: string;
  eventId: string;
  subscription: string;
  createdAt: Date;
}

export type WebhookEvent = PayoutWebhookEvent | OtherWebhookEvent;

export interface PixProvider {
  readonly name: string;
  /**
   * Looks the key up in the DICT. Throws PIX_KEY_NOT_FOUND when no account holds it,
   * ProviderRejectedError / ProviderAuthError / ProviderUnavailableError otherwise.
   */
  resolveKey(key: string): Promise<KeyOwner>;
  /**
   * Idempotent on req.ourKey: a repeat returns the payout already made under that key.
   * Throws ProviderAmbiguousError when the outcome is unknown (timeout, reset, 5xx): resolve it with
   * getPayout(req.ourKey), never by sending under another key. ProviderRejectedError and
   * ProviderAuthError are definitive: nothing was created by that call.
   */
  createPayout(req: PayoutRequest): Promise<ProviderPayout>;
  /** null: the provider definitively has no payout under that key. */
  getPayout(ourKey: string): Promise<ProviderPayout | null>;
  /** Every payout created in [from, to), ours or not (reconciliation). */
  listPayouts(from: Date, to: Date): Promise<ProviderPayout[]>;
  /**
   * Verifies the raw body against its signature and the event's age. Throws WebhookVerificationError
   * (WEBHOOK_SIGNATURE_INVALID / WEBHOOK_STALE → 401) or ProviderUnavailableError (could not fetch
   * the provider's key → 503, the provider retries).
   */
  verifyWebhook(rawBody: string, headers: Record<string, string | string[] | undefined>): Promise<WebhookEvent>;
}
