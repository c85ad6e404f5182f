// Shapes the stand-in keeps and serves. JSON field names follow Stark Bank's API v2.
import { randomInt } from "node:crypto";

export type TransferStatus = "created" | "processing" | "success" | "failed" | "canceled";

export interface TransferJson {
  id: string;
  amount: number;
  name: string;
  taxId: string;
  bankCode: string;
  branchCode: string;
  accountNumber: string;
  accountType: string;
  externalId: string | null;
  scheduled: string;
  description: string | null;
  tags: string[];
  rules: unknown[];
  fee: number;
  status: TransferStatus;
  transactionIds: string[];
  metadata: { authentication?: string };
  created: string;
  updated: string;
}

export interface TransferLogJson {
  id: string;
  type: string;
  errors: string[];
  created: string;
  transfer: TransferJson;
}

export interface KeyHolder {
  /** The PIX key (CPF/CNPJ digits, +55… phone, lowercase e-mail, EVP UUID). */
  key: string;
  type: "cpf" | "cnpj" | "phone" | "email" | "evp";
  name: string;
  /** The full document; CPFs are served masked, as the DICT does. */
  taxId: string;
  ispb?: string;
  bankName?: string;
  branchCode?: string;
  accountNumber?: string;
  accountType?: string;
  /** How transfers to this account end (default success). */
  outcome?: "success" | "failed";
}

export const FAULT_KINDS = [
  "http500",
  "http500_after_accept",
  "timeout",
  "timeout_after_accept",
  "reject",
  "webhook_before_response",
  "duplicate_webhook",
  "out_of_order_webhook",
  "drop_webhook",
  "late_failure",
  "return",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Which API calls an HTTP-level fault hits. */
export type FaultRoute = "any" | "create" | "get" | "list" | "dict" | "public_key";

export interface FaultSpec {
  kind: FaultKind;
  /** How many times it fires (default 1). */
  count?: number;
  /** Only for this externalId (transfer and webhook faults). */
  externalId?: string;
  /** http500 / timeout: which calls (default "any"; the *_after_accept kinds always hit creates). */
  route?: FaultRoute;
  /** Only webhooks of this log type ("created", "processing", "success", "failed", "chargeback"). */
  eventType?: string;
  /** timeout*: how long the answer is held before the socket is cut (default 60 s);
   *  late_failure: extra delay before failing; return: delay after success (default 100 ms);
   *  out_of_order_webhook: longest hold (default 2 s); webhook_before_response: extra hold. */
  delayMs?: number;
  /** duplicate_webhook: copies delivered (default 3). */
  times?: number;
  /** reject: the error code and HTTP status answered (default "invalidTransfer", 400). */
  code?: string;
  status?: number;
}

export interface Fault extends Required<Pick<FaultSpec, "kind" | "count">>, Omit<FaultSpec, "kind" | "count"> {
  id: string;
  fired: number;
}

export type DeliveryState = "pending" | "delivered" | "failed" | "dropped" | "held" | "no_url";

export interface EventRecord {
  id: string;
  transferId: string;
  externalId: string | null;
  type: string;
  created: string;
  body: string;
  signature: string;
  state: DeliveryState;
  attempts: number;
  /** Successful POSTs (more than one under duplicate_webhook). */
  deliveries: number;
  lastError?: string;
}

/** Stark Bank style ids: 16 digits. */
export const newId = (): string =>
  String(randomInt(1, 10)) + String(randomInt(0, 1e8)).padStart(8, "0") + String(randomInt(0, 1e7)).padStart(7, "0");

/** Stark Bank writes "+00:00" rather than "Z". */
export const iso = (ms: number): string => new Date(ms).toISOString().replace("Z", "+00:00");

export const dateOnly = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** "12345678909" → "***.456.789-**" (the DICT shows a CPF's middle six digits only). */
export function maskCpf(cpf: string): string {
  return `***.${cpf.slice(3, 6)}.${cpf.slice(6, 9)}-**`;
}

/** "12345678000195" → "12.345.678/0001-95" */
export function formatCnpj(c: string): string {
  return `${c.slice(0, 2)}.${c.slice(2, 5)}.${c.slice(5, 8)}/${c.slice(8, 12)}-${c.slice(12)}`;
}

/** A fake but well-formed end-to-end id: E + ISPB + yyyyMMddHHmm + 11 characters. */
export function endToEndId(ispb: string, ms: number): string {
  const d = new Date(ms).toISOString().replace(/[-:T]/g, "").slice(0, 12);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  let tail = "";
  for (let i = 0; i < 11; i++) tail += alphabet[randomInt(alphabet.length)];
  return `E${ispb}${d}${tail}`;
}
