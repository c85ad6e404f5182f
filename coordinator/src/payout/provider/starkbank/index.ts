/**
 * Stark Bank adapter for PIX payouts (API v2), on our own small client rather than the `starkbank`
 * npm SDK: the SDK picks its host from `environment` ("production" → api.starkbank.com,
 * "sandbox" → sandbox.api.starkbank.com) and cannot be pointed at another base URL, so it could not
 * talk to the stand-in.
 *
 * Verified in Stark Bank's SDK sources and docs (sdk-node, sdk-python, starkcore, ecdsa-node,
 * starkbank.com/docs):
 * - Auth: headers Access-Id ("project/<id>", or "organization/<id>[/workspace/<id>]"), Access-Time
 *   (unix seconds; the Node SDK sends an integer, the Python one a float string), Access-Signature =
 *   base64 DER ECDSA-secp256k1/SHA-256 of "<accessId>:<accessTime>:<body>" (body "" on GET).
 * - POST /v2/transfer {transfers:[{amount (integer centavos), name, taxId, bankCode, branchCode,
 *   accountNumber, accountType?, externalId?, scheduled?, description?, tags?, rules?}]} →
 *   {transfers:[…]}. A PIX transfer is one whose bankCode is the 8-digit ISPB (1–3 digits = TED).
 *   There is no PIX-key field: the key is resolved first with GET /v2/dict-key/{key} and its bank
 *   data sent. externalId is "url safe, unique among all your transfers; duplicated externalIds will
 *   cause failures" (a 400 with {errors:[{code, message}]}).
 * - Tags are converted to lowercase and can filter GET /v2/transfer; there is no externalId filter.
 *   GET /v2/transfer?after&before (dates)&status&tags&ids&limit(≤100)&cursor → {transfers, cursor};
 *   GET /v2/transfer/{id} → {transfer}; GET /v2/transfer/log?transferIds&types → {logs, cursor}.
 * - Transfer: id, amount, status ("created", "processing", "success", "failed"), fee, transactionIds
 *   ("if there are two, the second is the chargeback"), metadata.authentication = the end-to-end id,
 *   externalId, tags, created, updated.
 * - GET /v2/dict-key/{key} → {key: {id, type (cpf|cnpj|phone|email|evp), name, taxId (CPF masked,
 *   "***.345.678-**"; CNPJ in full), ownerType, bankName, ispb, branchCode, accountNumber,
 *   accountType, status}}.
 * - GET /v2/public-key?limit=1 → {publicKeys:[{content: PEM}]}. Webhooks POST {"event": {id, created,
 *   subscription ("transfer", …), workspaceId, log: {id, type, errors, created, transfer}}} with the
 *   body's signature in Digital-Signature; the SDKs verify with the cached key and, on failure, once
 *   more with a refetched key.
 *
 * Assumed (not found in public material; the stand-in implements these and the adapter is written
 * not to depend on the exact values):
 * - The error code of a duplicated externalId. On any 400 from a create we look the key up and, if a
 *   transfer exists under it, treat the create as done (after checking amount and destination).
 * - That GET /v2/transfer?tags= is read-your-writes, so "no transfer under this tag" is definitive.
 * - "canceled" as a status word (a deleted scheduled transfer) and how a return shows: we read
 *   success + a second transactionId as returned; a success later turning "failed" must also be
 *   treated as a return by the state machine.
 * - 401/403 for refused credentials, 404 for an unknown DICT key, and an Access-Time window.
 * - The event `created` time as the webhook's timestamp (there is no timestamp header). Stark Bank
 *   retries undelivered events; retries older than webhookMaxAgeMs are refused and left to
 *   reconciliation, which is safe because webhooks are only hints.
 */
import { isValidDocument, mask, normalizeDocument, PonteError, type Logger } from "@ponte/common";
import { matchesMaskedTaxId } from "../holder.js";
import { ProviderAmbiguousError, ProviderRejectedError, ProviderUnavailableError } from "../errors.js";
import type { KeyOwner, PayoutRequest, PixProvider, ProviderPayout, WebhookEvent } from "../types.js";
import { PROVIDER, StarkbankClient, type ApiResult } from "./client.js";
import {
  CreateTransfersResponse,
  DictKeyResponse,
  mapTransferStatus,
  PublicKeyResponse,
  toKeyOwner,
  toProviderPayout,
  TransferLogPage,
  TransferPage,
  type TransferJson,
} from "./schema.js";
import { loadPrivateKey } from "./signing.js";
import { PublicKeyCache, verifyStarkbankWebhook } from "./webhook.js";

export { starkbankOptionsFromEnv, StarkbankEnv } from "./config.js";
export { PublicKeyCache, safeEqual } from "./webhook.js";
export { loadPrivateKey, loadPublicKey, signMessage, verifyMessage } from "./signing.js";

export interface StarkbankProviderOptions {
  /** API root without the version: "https://api.starkbank.com", "https://sandbox.api.starkbank.com". */
  baseUrl: string;
  accessId: string;
  privateKeyPem: string;
  timeoutMs?: number;
  webhookMaxAgeMs?: number;
  webhookMaxFutureSkewMs?: number;
  /** Lower bound between two public-key fetches triggered by failed verifications. */
  publicKeyMinRefetchMs?: number;
  workspaceId?: string;
  /** Test seam for the clock. */
  now?: () => number;
}

export interface StarkbankProviderCommon {
  logger: Logger;
  shutdown?: { signal: AbortSignal };
}

/** Our externalId: Stark Bank wants it "url safe". */
const OUR_KEY = /^[A-Za-z0-9_-]{1,64}$/;
/** The tag that finds a payout by our key (tags are lowercased by Stark Bank; externalId is exact). */
export const ourKeyTag = (ourKey: string): string => `ponte-payout/${ourKey.toLowerCase()}`;

const DAY_MS = 86_400_000;
const MAX_PAGES = 1_000;

export function createStarkbankProvider(common: StarkbankProviderCommon, options: StarkbankProviderOptions): PixProvider {
  const logger = common.logger.child({ provider: PROVIDER });
  const now = options.now ?? Date.now;
  const client = new StarkbankClient({
    baseUrl: options.baseUrl,
    accessId: options.accessId,
    privateKey: loadPrivateKey(options.privateKeyPem),
    timeoutMs: options.timeoutMs ?? 15_000,
    logger,
    now,
    ...(common.shutdown ? { signal: common.shutdown.signal } : {}),
  });

  const badResponse = (op: string, status: number, issues: unknown, mutating = false) => {
    const Err = mutating ? ProviderAmbiguousError : ProviderUnavailableError;
    return new Err(`Stark Bank ${op}: unexpected answer`, { provider: PROVIDER, op, status, reason: "bad_response", issues });
  };

  const rejected = (op: string, r: Extract<ApiResult, { ok: false }>) =>
    new ProviderRejectedError(`Stark Bank refused ${op}: ${r.errors.map((e) => e.code).join(", ")}`, {
      provider: PROVIDER,
      op,
      status: r.status,
      errors: r.errors,
    });

  const keys = new PublicKeyCache(
    async () => {
      const r = await client.request("get_public_key", "GET", "/public-key", { query: { limit: "1" } });
      if (!r.ok) throw rejected("get_public_key", r);
      const p = PublicKeyResponse.safeParse(r.body);
      if (!p.success) throw badResponse("get_public_key", r.status, p.error.issues);
      return p.data.publicKeys[0]!.content;
    },
    options.publicKeyMinRefetchMs ?? 30_000,
    now,
  );

  async function failureReason(transferId: string): Promise<string | undefined> {
    const r = await client.request("list_transfer_logs", "GET", "/transfer/log", {
      query: { transferIds: transferId, types: "failed", limit: "10" },
    });
    if (!r.ok) throw rejected("list_transfer_logs", r);
    const p = TransferLogPage.safeParse(r.body);
    if (!p.success) throw badResponse("list_transfer_logs", r.status, p.error.issues);
    const errors = p.data.logs.flatMap((l) => l.errors);
    return errors.length > 0 ? errors.join("; ") : undefined;
  }

  /** withReason: one more call for a failed transfer's reason (not while listing a whole day). */
  async function toPayout(t: TransferJson, withReason = true): Promise<ProviderPayout> {
    const status = mapTransferStatus(t);
    if (status === null) {
      logger.warn({ provider_id: t.id, provider_status: t.status }, "Unknown Stark Bank transfer status; treating it as processing");
      return toProviderPayout(t, "processing");
    }
    if (status !== "failed" || !withReason) return toProviderPayout(t, status);
    // The reason is a detail for people; the outcome does not depend on it.
    try {
      return toProviderPayout(t, status, await failureReason(t.id));
    } catch (err) {
      logger.warn({ err, provider_id: t.id }, "Could not read why a Stark Bank transfer failed");
      return toProviderPayout(t, status);
    }
  }

  async function findByOurKey(ourKey: string, op: string): Promise<TransferJson | null> {
    const r = await client.request(op, "GET", "/transfer", { query: { tags: ourKeyTag(ourKey), limit: "100" } });
    if (!r.ok) throw rejected(op, r);
    const p = TransferPage.safeParse(r.body);
    if (!p.success) throw badResponse(op, r.status, p.error.issues);
    const matches = p.data.transfers.filter((t) => t.externalId === ourKey);
    if (matches.length > 1) {
      // externalId is unique at Stark Bank: two answers mean something is badly wrong. Stop and alert.
      throw new PonteError("INTERNAL", "Stark Bank returned several transfers for one externalId", {
        provider: PROVIDER,
        our_key: ourKey,
        provider_ids: matches.map((t) => t.id),
      });
    }
    return matches[0] ?? null;
  }

  function validate(req: PayoutRequest): void {
    const fail = (code: "VALIDATION_ERROR" | "INVALID_AMOUNT" | "HOLDER_DOCUMENT_MISMATCH", message: string) => {
      throw new PonteError(code, message, { provider: PROVIDER, our_key: req.ourKey });
    };
    if (!OUR_KEY.test(req.ourKey)) fail("VALIDATION_ERROR", "payout key must be 1 to 64 characters of [A-Za-z0-9_-]");
    if (req.amountCentavos <= 0n || req.amountCentavos > BigInt(Number.MAX_SAFE_INTEGER)) {
      fail("INVALID_AMOUNT", "payout amount must be a positive number of centavos");
    }
    if (req.keyOwner.key !== req.pixKey) fail("VALIDATION_ERROR", "key owner was resolved for another PIX key");
    if (!/^\d{8}$/.test(req.keyOwner.ispb)) fail("VALIDATION_ERROR", "key owner has no 8-digit ISPB");
    const doc = normalizeDocument(req.holderTaxId);
    if (!isValidDocument(doc) || !matchesMaskedTaxId(req.keyOwner.taxId, doc)) {
      fail("HOLDER_DOCUMENT_MISMATCH", "the payee's document does not match the key holder's");
    }
  }

  function sameOrder(t: TransferJson, req: PayoutRequest): boolean {
    return (
      BigInt(t.amount) === req.amountCentavos &&
      t.bankCode === req.keyOwner.ispb &&
      t.branchCode === req.keyOwner.branch &&
      t.accountNumber === req.keyOwner.account &&
      normalizeDocument(t.taxId) === normalizeDocument(req.holderTaxId)
    );
  }

  return {
    name: PROVIDER,

    async resolveKey(key: string): Promise<KeyOwner> {
      const r = await client.request("get_dict_key", "GET", `/dict-key/${encodeURIComponent(key)}`);
      if (!r.ok) {
        if (r.status === 404) {
          throw new PonteError("PIX_KEY_NOT_FOUND", "No account holds this PIX key", { provider: PROVIDER, key: mask(key) });
        }
        throw rejected("get_dict_key", r);
      }
      const p = DictKeyResponse.safeParse(r.body);
      if (!p.success) throw badResponse("get_dict_key", r.status, p.error.issues);
      if (p.data.key.status === "canceled" || p.data.key.status === "failed") {
        throw new PonteError("PIX_KEY_NOT_FOUND", "This PIX key is no longer registered", { provider: PROVIDER, key: mask(key) });
      }
      const owner = toKeyOwner(p.data.key, key);
      if (!owner) throw badResponse("get_dict_key", r.status, [`unknown key type ${p.data.key.type}`]);
      return owner;
    },

    async createPayout(req: PayoutRequest): Promise<ProviderPayout> {
      validate(req);
      const op = "create_transfer";
      const tags = [ourKeyTag(req.ourKey), ...(req.tags ?? []).map((t) => t.toLowerCase())];
      const transfer = {
        // A JSON integer: safe by the check in validate(); never a fractional value.
        amount: Number(req.amountCentavos),
        name: req.keyOwner.holderName,
        taxId: normalizeDocument(req.holderTaxId),
        bankCode: req.keyOwner.ispb,
        branchCode: req.keyOwner.branch,
        accountNumber: req.keyOwner.account,
        accountType: req.keyOwner.accountType,
        externalId: req.ourKey,
        tags,
        ...(req.description ? { description: req.description } : {}),
      };
      const r = await client.request(op, "POST", "/transfer", { body: { transfers: [transfer] }, mutating: true });
      if (r.ok) {
        const p = CreateTransfersResponse.safeParse(r.body);
        const t = p.success ? p.data.transfers.find((x) => x.externalId === req.ourKey) : undefined;
        if (!t) throw badResponse(op, r.status, p.success ? ["our transfer is missing from the answer"] : p.error.issues, true);
        logger.info({ our_key: req.ourKey, provider_id: t.id, amount_centavos: t.amount }, "Stark Bank transfer created");
        return toPayout(t);
      }

      // A definitive refusal. If it is because the key was already used (our earlier attempt
      // landed), that earlier transfer is the answer; if the lookup itself cannot answer, the
      // outcome is unknown to us.
      let existing: TransferJson | null;
      try {
        existing = await findByOurKey(req.ourKey, "find_transfer");
      } catch (err) {
        throw new ProviderAmbiguousError(
          "Stark Bank refused the create and the key could not be looked up",
          { provider: PROVIDER, op, status: r.status, reason: "lookup_failed", errors: r.errors },
          { cause: err },
        );
      }
      if (!existing) throw rejected(op, r);
      if (!sameOrder(existing, req)) {
        throw new PonteError("IDEMPOTENCY_KEY_REUSED", "A different Stark Bank transfer already uses this key", {
          provider: PROVIDER,
          our_key: req.ourKey,
          provider_id: existing.id,
        });
      }
      logger.info({ our_key: req.ourKey, provider_id: existing.id }, "Stark Bank transfer already existed under this key");
      return toPayout(existing);
    },

    async getPayout(ourKey: string): Promise<ProviderPayout | null> {
      if (!OUR_KEY.test(ourKey)) {
        throw new PonteError("VALIDATION_ERROR", "payout key must be 1 to 64 characters of [A-Za-z0-9_-]", { our_key: ourKey });
      }
      const t = await findByOurKey(ourKey, "find_transfer");
      return t ? toPayout(t) : null;
    },

    async listPayouts(from: Date, to: Date): Promise<ProviderPayout[]> {
      // Stark Bank filters by calendar date (time zone unspecified): ask a day wider on each side,
      // then keep exactly [from, to).
      const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
      const query = { after: day(from.getTime() - DAY_MS), before: day(to.getTime() + DAY_MS), limit: "100" };
      const out: ProviderPayout[] = [];
      let cursor: string | undefined;
      for (let page = 0; ; page++) {
        if (page >= MAX_PAGES) throw new PonteError("INTERNAL", "Stark Bank transfer listing did not end", { pages: page });
        const r = await client.request("list_transfers", "GET", "/transfer", { query: { ...query, cursor } });
        if (!r.ok) throw rejected("list_transfers", r);
        const p = TransferPage.safeParse(r.body);
        if (!p.success) throw badResponse("list_transfers", r.status, p.error.issues);
        for (const t of p.data.transfers) {
          const created = Date.parse(t.created);
          if (created >= from.getTime() && created < to.getTime()) out.push(await toPayout(t, false));
        }
        if (!p.data.cursor) return out;
        cursor = p.data.cursor;
      }
    },

    verifyWebhook(rawBody: string, headers: Record<string, string | string[] | undefined>): Promise<WebhookEvent> {
      return verifyStarkbankWebhook(
        {
          keys,
          logger,
          now,
          maxAgeMs: options.webhookMaxAgeMs ?? 3_600_000,
          maxFutureSkewMs: options.webhookMaxFutureSkewMs ?? 300_000,
          ...(options.workspaceId ? { workspaceId: options.workspaceId } : {}),
        },
        rawBody,
        headers,
      );
    },
  };
}
