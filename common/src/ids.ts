import { randomBytes } from "node:crypto";

// Prefixed, time-ordered ids (48-bit milliseconds + 80 random bits, Crockford base32, like a
// ULID): they sort by creation time, which keeps cursor pagination and indexes cheap.
const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
const prefixes = { trade: "trd", quote: "qte", payout: "pay", order: "tro", event: "evt" } as const;
export type IdKind = keyof typeof prefixes;

export type TradeId = `trd_${string}` & { readonly __brand: "TradeId" };
export type QuoteId = `qte_${string}` & { readonly __brand: "QuoteId" };

function encode(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

export function newId(kind: "trade"): TradeId;
export function newId(kind: "quote"): QuoteId;
export function newId(kind: IdKind): string;
export function newId(kind: IdKind): string {
  const bytes = new Uint8Array(16);
  const ms = BigInt(Date.now());
  for (let i = 0; i < 6; i++) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  bytes.set(randomBytes(10), 6);
  return `${prefixes[kind]}_${encode(bytes)}`;
}

const ID_BODY = /^[0-9abcdefghjkmnpqrstvwxyz]{26}$/;
export const isId = (kind: IdKind, s: string): boolean => {
  const p = `${prefixes[kind]}_`;
  return s.startsWith(p) && ID_BODY.test(s.slice(p.length));
};
export const isTradeId = (s: string): s is TradeId => isId("trade", s);
export const isQuoteId = (s: string): s is QuoteId => isId("quote", s);
