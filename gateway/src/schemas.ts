import { z } from "@hono/zod-openapi";
import { MAX_PIX_KEY_LENGTH, PIX_KEY_TYPES, TRADE_STATUSES, isTradeId } from "@ponte/common";

// The HTTP API's JSON, as the desk's frontend already speaks it: snake_case, amounts as decimal
// strings. Requests are strict (an unknown field is a 422, not silently dropped); responses are
// what the mappers in coordinator/ produce and what /openapi.json documents.

/** Mirrors the id alphabet of common/src/ids.ts; isTradeId/isQuoteId stay the authority. */
const ID_BODY = "[0-9a-hjkmnp-tv-z]{26}";
export const TRADE_ID_PATTERN = `^trd_${ID_BODY}$`;
export const QUOTE_ID_PATTERN = `^qte_${ID_BODY}$`;


// Finer checks (decimals per asset, zero, min/max) are the coordinator's: it knows the asset.
const AMOUNT = /^\d+(\.\d+)?$/;
const amount = (example: string) =>
  z
    .string()
    .max(40, "must be at most 40 characters")
    .regex(AMOUNT, 'must be a decimal string like "100.5"')
    .openapi({ example });

const reason = z
  .string()
  .trim()
  .min(1, "must not be empty")
  .max(500, "must be at most 500 characters");

// ---------- errors ----------

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "VALIDATION_ERROR" }),
      message: z.string(),
      details: z.record(z.string(), z.unknown()),
    }),
  })
  .openapi("Error");

// ---------- path and query ----------

export const TradeIdParams = z.object({
  trade_id: z
    .string()
    .refine(isTradeId, "must be a trade id (trd_ followed by 26 characters)")
    .openapi({ param: { name: "trade_id", in: "path" }, pattern: TRADE_ID_PATTERN, example: "trd_06h2d176hda7fc46fchwk6mza8" }),
});

export const HistoryQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).optional().openapi({ description: "page size, 1 to 100 (default 20)", example: 20 }),
  cursor: z.string().min(1).max(512).optional().openapi({ description: "next_cursor of the previous page" }),
  status: z.enum(TRADE_STATUSES).optional(),
});

export const IdempotencyHeaders = z.object({
  "Idempotency-Key": z
    .string({ error: "the Idempotency-Key header is required" })
    .regex(/^[A-Za-z0-9_\-:.]{1,128}$/, "must be 1 to 128 characters of A-Z a-z 0-9 _ - : .")
    .openapi({ param: { name: "Idempotency-Key", in: "header" }, example: "b6f1c2d0-checkout-1" }),
});

// ---------- request bodies ----------

export const QuoteRequest = z
  .strictObject({
    symbol: z.string().min(1).max(32).openapi({ example: "USDT" }),
    network: z.string().min(1).max(32).openapi({ example: "polygon" }),
    crypto_amount: amount("100.5").optional(),
    fiat_amount: amount("543.21").optional(),
  })
  .superRefine((b, ctx) => {
    const given = (b.crypto_amount !== undefined ? 1 : 0) + (b.fiat_amount !== undefined ? 1 : 0);
    if (given !== 1) {
      ctx.addIssue({ code: "custom", path: ["crypto_amount"], message: "give exactly one of crypto_amount and fiat_amount" });
    }
  })
  .openapi("QuoteRequest", { description: "Exactly one of crypto_amount (in the asset's units) and fiat_amount (BRL)." });

export const CreateTradeRequest = z
  .strictObject({
    // Only the type here: a malformed quote id is 400 INVALID_ID (checked in the route), like a path id.
    quote_id: z.string().min(1).max(64).openapi({ pattern: QUOTE_ID_PATTERN, example: "qte_06h2d176hjnn0qayzpmjs9vyew" }),
    refund_address: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .openapi({ example: "0x2b5AD5c4795c026514f8317c7a215E218DcCD6cF", description: "required for a deposit; absent for a custodial sell" }),
    source: z.enum(["deposit", "custodial"]).optional().openapi({
      description:
        "deposit (default): the seller sends to the trade's fresh deposit address. custodial: the desk moves the quoted amount " +
        "from the seller's custodial wallet on that network (no refund_address; refunds go back to that wallet).",
    }),
  })
  .superRefine((b, ctx) => {
    const custodial = b.source === "custodial";
    if (!custodial && b.refund_address === undefined) {
      ctx.addIssue({ code: "custom", path: ["refund_address"], message: "required unless source is custodial" });
    }
    if (custodial && b.refund_address !== undefined) {
      ctx.addIssue({ code: "custom", path: ["refund_address"], message: "a custodial sell refunds to the custodial wallet; omit it" });
    }
  })
  .openapi("CreateTradeRequest");

export const PutCustodialAccountRequest = z
  .strictObject({
    address: z.string().min(1).max(128).openapi({ example: "0x5c7D1AE2E4A9B4cD3a6F30f7E3c5a1F0b2d9E8c4" }),
    derivation_index: z
      .number()
      .int()
      .min(0)
      .max(0x7fff_ffff)
      .openapi({ description: "the index on the agent's custodial account path (EVM m/44'/60'/2'/0/{index})", example: 7 }),
  })
  .openapi("PutCustodialAccountRequest");

export const CustodialAccountParams = z.object({
  network: z
    .string()
    .regex(/^[a-z0-9-]{1,64}$/)
    .openapi({ param: { name: "network", in: "path" }, pattern: "^[a-z0-9-]{1,64}$", example: "polygon" }),
  user_id: z
    .string()
    .min(1)
    .max(128)
    .openapi({ param: { name: "user_id", in: "path" }, example: "user-42" }),
});

export const NetworkParams = CustodialAccountParams.pick({ network: true });

export const CancelRequest = z.strictObject({ reason: reason.optional() }).openapi("CancelRequest");

export const AdminActionRequest = z.strictObject({ reason }).openapi("AdminActionRequest");

export const PutPixKeyRequest = z
  .strictObject({
    key_type: z.enum(PIX_KEY_TYPES),
    key: z.string().min(1).max(MAX_PIX_KEY_LENGTH).openapi({ example: "+5511987654321" }),
    holder_document: z.string().min(1).max(32).openapi({ description: "CPF or CNPJ of the account holder", example: "52998224725" }),
    holder_name: z.string().trim().min(1).max(140).openapi({ example: "Maria da Silva" }),
  })
  .openapi("PutPixKeyRequest");

// ---------- responses ----------

export const AssetSchema = z
  .object({
    symbol: z.string(),
    network: z.string(),
    name: z.string(),
    decimals: z.number().int(),
    contract: z.string().nullable().openapi({ description: "token contract or mint; null for the native coin" }),
    min_amount: z.string(),
    max_amount: z.string(),
    confirmations: z.number().int(),
    enabled: z.boolean(),
    spread_percent: z.string().openapi({ example: "3" }),
    network_fee_percent: z.string().openapi({ example: "0.25" }),
    price: z.string().nullable().openapi({ description: "reference BRL per whole unit; null when no fresh price" }),
  })
  .openapi("Asset");

export const AssetListSchema = z.object({ assets: z.array(AssetSchema) }).openapi("AssetList");

export const QuoteSchema = z
  .object({
    quote_id: z.string(),
    symbol: z.string(),
    network: z.string(),
    crypto_amount: z.string().openapi({ example: "100.5" }),
    fiat_amount: z.string().openapi({ example: "543.21", description: "BRL the seller receives" }),
    price: z.string().openapi({ description: "reference BRL per whole unit" }),
    spread: z.string().openapi({ description: "BRL" }),
    network_fee: z.string().openapi({ description: "BRL" }),
    spread_percent: z.string(),
    network_fee_percent: z.string(),
    expires_at: z.string(),
    created_at: z.string(),
  })
  .openapi("Quote");

export const TradeSchema = z
  .object({
    id: z.string(),
    user_id: z.string(),
    quote_id: z.string(),
    status: z.string().openapi({ example: "PENDING", description: `one of ${TRADE_STATUSES.join(", ")}` }),
    symbol: z.string(),
    network: z.string(),
    crypto_amount: z.string(),
    fiat_amount: z.string(),
    price: z.string(),
    deposit_address: z.string(),
    refund_address: z.string().nullable(),
    expires_at: z.string(),
    monitoring_until: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
    version: z.number().int(),
    received_amount: z.string(),
    confirmed_amount: z.string(),
    payout_amount: z.string().nullable().openapi({ description: "BRL; null until a payout exists" }),
    payout_status: z
      .string()
      .nullable()
      .openapi({ description: "PENDING, UNKNOWN, PROCESSING, SETTLED, FAILED or RETURNED; null until a payout exists", example: "SETTLED" }),
    payout_end_to_end_id: z
      .string()
      .nullable()
      .openapi({ description: "the Banco Central end-to-end id of the PIX transfer, once settled; else null" }),
    source: z.enum(["deposit", "custodial"]).openapi({ description: "deposit, or custodial (sold from the seller's custodial wallet)" }),
  })
  .openapi("Trade");

export const TradePageSchema = z
  .object({ trades: z.array(TradeSchema), next_cursor: z.string().nullable() })
  .openapi("TradePage");

export const AuditLogSchema = z
  .object({
    trade_id: z.string(),
    entries: z.array(
      z.object({
        id: z.number().int(),
        from_status: z.string().nullable(),
        to_status: z.string(),
        actor: z.string(),
        reason: z.string().nullable(),
        created_at: z.string(),
        version: z.number().int(),
        data: z.record(z.string(), z.string()),
      }),
    ),
    /** Movements of the trade's funds on chain: sweeps, refunds and their gas top-ups. */
    transfers: z.array(
      z.object({
        order_id: z.string(),
        kind: z.string(),
        status: z.string(),
        from_address: z.string(),
        to_address: z.string(),
        contract: z.string().nullable(),
        amount_base_units: z.string(),
        tx_hash: z.string().nullable(),
        fee_base_units: z.string().nullable(),
        attempts: z.number().int(),
        purpose: z.string().openapi({ description: "REFUND: trade (the whole trade), excess (an over-payment's excess) or late_deposit; else trade" }),
        reason: z.string().nullable(),
        created_at: z.string(),
        updated_at: z.string(),
      }),
    ),
  })
  .openapi("AuditLog");

export const PixKeySchema = z
  .object({
    user_id: z.string(),
    key_type: z.string().openapi({ example: "phone" }),
    key: z.string(),
    holder_document: z.string(),
    holder_name: z.string(),
    updated_at: z.string(),
  })
  .openapi("PixKey");

export const CustodialAccountSchema = z
  .object({
    user_id: z.string(),
    network: z.string(),
    address: z.string(),
    derivation_index: z.number().int(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("CustodialAccount");

export const WebhookProviderParams = z.object({
  provider: z
    .string()
    .regex(/^[a-z0-9-]{1,32}$/)
    .openapi({ param: { name: "provider", in: "path" }, pattern: "^[a-z0-9-]{1,32}$", example: "starkbank" }),
});

export const WebhookAckSchema = z
  .object({
    received: z.literal(true),
    duplicate: z.boolean().openapi({ description: "true when this event id was already received (nothing done again)" }),
  })
  .openapi("WebhookAck");

export type AssetJson = z.infer<typeof AssetSchema>;
export type QuoteJson = z.infer<typeof QuoteSchema>;
export type TradeJson = z.infer<typeof TradeSchema>;
export type TradePageJson = z.infer<typeof TradePageSchema>;
export type AuditLogJson = z.infer<typeof AuditLogSchema>;
export type PixKeyJson = z.infer<typeof PixKeySchema>;
export type CustodialAccountJson = z.infer<typeof CustodialAccountSchema>;
export type WebhookAckJson = z.infer<typeof WebhookAckSchema>;
