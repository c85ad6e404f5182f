// Stark Bank's JSON shapes (API v2) and their conversion to the provider-agnostic types. Nothing
// outside this folder sees these shapes.
import { z } from "zod";
import { PIX_KEY_TYPES, type PixKeyType } from "@ponte/common";
import type { KeyOwner, PayoutStatus, ProviderPayout } from "../types.js";
import { isMaskedTaxId } from "../holder.js";
import { PROVIDER } from "./client.js";

const dateString = z.string().refine((s) => !Number.isNaN(Date.parse(s)), "not a date");

// Amounts are JSON integers of centavos; z.int() refuses anything outside the safe-integer range,
// so the bigint conversion below is exact.
export const TransferJson = z.object({
  id: z.string().min(1),
  amount: z.int(),
  name: z.string(),
  taxId: z.string(),
  bankCode: z.string(),
  branchCode: z.string(),
  accountNumber: z.string(),
  accountType: z.string().nullish(),
  externalId: z.string().nullish(),
  status: z.string(),
  fee: z.int().nullish(),
  tags: z.array(z.string()).nullish(),
  transactionIds: z.array(z.string()).nullish(),
  metadata: z.object({ authentication: z.string().nullish() }).nullish(),
  created: dateString,
  updated: dateString,
});
export type TransferJson = z.infer<typeof TransferJson>;

export const CreateTransfersResponse = z.object({ transfers: z.array(TransferJson) });
export const TransferPage = z.object({ transfers: z.array(TransferJson), cursor: z.string().nullish() });

const LogErrors = z
  .array(z.union([z.string(), z.object({ message: z.string() }).loose()]))
  .nullish()
  .transform((l) => (l ?? []).map((e) => (typeof e === "string" ? e : e.message)));

export const TransferLogJson = z.object({
  id: z.string(),
  type: z.string(),
  errors: LogErrors,
  created: dateString,
  transfer: TransferJson.optional(),
});
export const TransferLogPage = z.object({ logs: z.array(TransferLogJson), cursor: z.string().nullish() });

export const DictKeyJson = z.object({
  id: z.string(),
  type: z.string(),
  name: z.string(),
  taxId: z.string(),
  ownerType: z.string().nullish(),
  bankName: z.string().nullish(),
  ispb: z.string().regex(/^\d{8}$/, "ISPB must be 8 digits"),
  branchCode: z.string(),
  accountNumber: z.string(),
  accountType: z.string().nullish(),
  status: z.string().nullish(),
});
export const DictKeyResponse = z.object({ key: DictKeyJson });

export const PublicKeyResponse = z.object({
  publicKeys: z.array(z.object({ content: z.string().min(1) })).min(1),
});

export const EventJson = z.object({
  id: z.string().min(1),
  created: dateString,
  subscription: z.string(),
  workspaceId: z.string().nullish(),
  log: z.object({
    id: z.string(),
    type: z.string(),
    created: dateString.optional(),
    errors: LogErrors,
    transfer: TransferJson.optional(),
  }),
});
export const EventEnvelope = z.object({ event: EventJson });

/**
 * Stark Bank transfer status → ours. "success" with a second ledger transaction is a return: the
 * SDK documents transactionIds as "if there are two, the second is the chargeback". "canceled"
 * (a scheduled transfer deleted before it ran) moved no money. An unknown word is kept non-final
 * (null) so reconciliation keeps asking instead of guessing an outcome.
 */
export function mapTransferStatus(t: Pick<TransferJson, "status" | "transactionIds">): PayoutStatus | null {
  switch (t.status) {
    case "created":
      return "created";
    case "processing":
      return "processing";
    case "success":
      return (t.transactionIds?.length ?? 0) >= 2 ? "returned" : "success";
    case "failed":
    case "canceled":
      return "failed";
    default:
      return null;
  }
}

export function toProviderPayout(t: TransferJson, status: PayoutStatus, failureReason?: string): ProviderPayout {
  return {
    provider: PROVIDER,
    providerId: t.id,
    ourKey: t.externalId ?? null,
    amountCentavos: BigInt(t.amount),
    status,
    providerStatus: t.status,
    ...(failureReason ? { failureReason } : {}),
    ...(t.metadata?.authentication ? { endToEndId: t.metadata.authentication } : {}),
    destination: {
      name: t.name,
      taxId: t.taxId,
      bankCode: t.bankCode,
      branch: t.branchCode,
      account: t.accountNumber,
      ...(t.accountType ? { accountType: t.accountType } : {}),
    },
    ...(t.fee !== undefined && t.fee !== null ? { feeCentavos: BigInt(t.fee) } : {}),
    tags: t.tags ?? [],
    createdAt: new Date(t.created),
    updatedAt: new Date(t.updated),
  };
}

const isPixKeyType = (s: string): s is PixKeyType => (PIX_KEY_TYPES as readonly string[]).includes(s);

export function toKeyOwner(k: z.infer<typeof DictKeyJson>, key: string): KeyOwner | null {
  if (!isPixKeyType(k.type)) return null;
  return {
    key,
    keyType: k.type,
    holderName: k.name,
    taxId: k.taxId,
    taxIdMasked: isMaskedTaxId(k.taxId),
    ownerType: k.ownerType === "naturalPerson" ? "natural" : k.ownerType === "legalPerson" ? "legal" : "unknown",
    ispb: k.ispb,
    ...(k.bankName ? { bankName: k.bankName } : {}),
    branch: k.branchCode,
    account: k.accountNumber,
    accountType: k.accountType ?? "checking",
  };
}
