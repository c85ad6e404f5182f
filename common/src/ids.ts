import { randomFillSync } from "node:crypto";

// Prefixed, time-ordered ids (48-bit milliseconds + 80 random bits, Crockford base32, like a
// ULID): they sort by creation time, which keeps cursor pagination and indexes cheap.
const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
const prefixes = { trade: "trd", quote: "qte", payout: "pay", order: "tro", event: "evt" } as const;
export type IdKind = keyof typeof prefixes;

export type TradeId = `trd_${string}` & { readonly __brand: "TradeId" };
export type QuoteId = `qte_${string}` & { readonly __brand: "QuoteId" };

// The random part comes from a pool of the CSPRNG's bytes refilled 4 KiB at a time (each byte
// used once), as uuid's generators do: one call per 409 ids instead of one each, which was
// ~1–3 % of the coordinator's CPU under load (bench/README.md, B4).
const RANDOM_BYTES = 10;
const pool = new Uint8Array(4096);
let poolAt = pool.length;

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
  // Below 2^53: exact in a double, no BigInt per byte.
  let ms = Date.now();
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  if (poolAt + RANDOM_BYTES > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  bytes.set(pool.subarray(poolAt, poolAt + RANDOM_BYTES), 6);
  poolAt += RANDOM_BYTES;
  return `${prefixes[kind]}_${encode(bytes)}`;
}

const ID_BODY = /^[0-9abcdefghjkmnpqrstvwxyz]{26}$/;
export const isId = (kind: IdKind, s: string): boolean => {
  const p = `${prefixes[kind]}_`;
  return s.startsWith(p) && ID_BODY.test(s.slice(p.length));
};
export const isTradeId = (s: string): s is TradeId => isId("trade", s);
export const isQuoteId = (s: string): s is QuoteId => isId("quote", s);
