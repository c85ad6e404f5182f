// Webhook verification: Stark Bank signs the raw body (ECDSA secp256k1, SHA-256, DER, base64) in
// the Digital-Signature header with a key published at GET /v2/public-key. The key is cached;
// on a failed verification it is fetched again once (Stark Bank may rotate it), as the official
// SDKs do — but at most once per minRefetchMs, so a flood of forged requests cannot turn into a
// flood of calls to Stark Bank.
import { createHash, timingSafeEqual, type KeyObject } from "node:crypto";
import type { Logger } from "@ponte/common";
import { WebhookVerificationError } from "../errors.js";
import type { WebhookEvent } from "../types.js";
import { PROVIDER } from "./client.js";
import { EventEnvelope, mapTransferStatus } from "./schema.js";
import { loadPublicKey, verifyMessage } from "./signing.js";

export class PublicKeyCache {
  private key: KeyObject | undefined;
  private fetchedAt = -Infinity;
  private inflight: Promise<KeyObject> | undefined;

  constructor(
    private readonly fetchPem: () => Promise<string>,
    private readonly minRefetchMs: number,
    private readonly now: () => number,
  ) {}

  async current(): Promise<KeyObject> {
    return this.key ?? this.fetch();
  }

  /**
   * After `failed` did not verify: a newer key if one was fetched meanwhile, else a fresh fetch
   * unless the last one is too recent (then null: nothing new to try).
   */
  async refreshAfterFailure(failed: KeyObject): Promise<KeyObject | null> {
    if (this.key && this.key !== failed) return this.key;
    if (this.inflight) return this.inflight;
    if (this.now() - this.fetchedAt < this.minRefetchMs) return null;
    const fresh = await this.fetch();
    return fresh.equals(failed) ? null : fresh;
  }

  private fetch(): Promise<KeyObject> {
    // Single flight: concurrent verifications share one request.
    this.inflight ??= (async () => {
      try {
        const key = loadPublicKey(await this.fetchPem());
        this.key = key;
        this.fetchedAt = this.now();
        return key;
      } finally {
        this.inflight = undefined;
      }
    })();
    return this.inflight;
  }
}

export interface WebhookVerifierOptions {
  keys: PublicKeyCache;
  logger: Logger;
  now: () => number;
  /** Events whose creation time is older than this are refused (WEBHOOK_STALE). */
  maxAgeMs: number;
  /** …or further in the future than this (clock skew). */
  maxFutureSkewMs: number;
  /** When set, events from any other workspace are refused. */
  workspaceId?: string;
}

export function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === wanted) return Array.isArray(v) ? v[0] : v;
  }
  return undefined;
}

/** Constant-time string equality (hashing first makes the lengths equal). */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}

export async function verifyStarkbankWebhook(
  o: WebhookVerifierOptions,
  rawBody: string,
  headers: Record<string, string | string[] | undefined>,
): Promise<WebhookEvent> {
  const invalid = (reason: string, extra: Record<string, unknown> = {}) =>
    new WebhookVerificationError("WEBHOOK_SIGNATURE_INVALID", "Webhook signature is not valid", {
      provider: PROVIDER,
      reason,
      ...extra,
    });

  const signature = headerValue(headers, "digital-signature");
  if (!signature) throw invalid("missing_signature");

  const key = await o.keys.current();
  if (!verifyMessage(key, rawBody, signature)) {
    const fresh = await o.keys.refreshAfterFailure(key);
    if (!fresh || !verifyMessage(fresh, rawBody, signature)) throw invalid("bad_signature", { refetched: fresh !== null });
    o.logger.info("Stark Bank webhook verified with a refetched public key");
  }

  // Only a verified body is parsed.
  let json: unknown;
  try {
    json = JSON.parse(rawBody);
  } catch (err) {
    throw invalid("malformed_body", { error: err instanceof Error ? err.message : String(err) });
  }
  const parsed = EventEnvelope.safeParse(json);
  if (!parsed.success) throw invalid("unexpected_shape", { issues: parsed.error.issues.slice(0, 5).map((i) => i.message) });
  const ev = parsed.data.event;

  if (o.workspaceId && !(ev.workspaceId && safeEqual(ev.workspaceId, o.workspaceId))) {
    throw invalid("foreign_workspace");
  }

  const created = new Date(ev.created);
  const age = o.now() - created.getTime();
  if (age > o.maxAgeMs || -age > o.maxFutureSkewMs) {
    throw new WebhookVerificationError("WEBHOOK_STALE", "Webhook event is outside the accepted time window", {
      provider: PROVIDER,
      reason: age > 0 ? "too_old" : "in_the_future",
      event_id: ev.id,
      age_ms: age,
    });
  }

  const transfer = ev.log.transfer;
  if (ev.subscription !== "transfer" || !transfer) {
    return { type: "other", provider: PROVIDER, eventId: ev.id, subscription: ev.subscription, createdAt: created };
  }
  // An unknown status word is reported as "processing": a hint that something changed; the
  // coordinator re-reads the payout before acting anyway.
  const status = mapTransferStatus(transfer) ?? "processing";
  return {
    type: "payout",
    provider: PROVIDER,
    eventId: ev.id,
    ourKey: transfer.externalId ?? null,
    providerId: transfer.id,
    status,
    providerEventType: ev.log.type,
    ...(ev.log.errors.length > 0 ? { failureReason: ev.log.errors.join("; ") } : {}),
    createdAt: created,
  };
}
