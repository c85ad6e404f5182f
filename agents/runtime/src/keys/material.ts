// Seed material as it arrives from a key source: a BIP39 mnemonic or a hex seed. Parsed once,
// held in Buffers that close() zeroes, and never rendered into an error, log line or JSON.
import { createHash, pbkdf2Sync } from "node:crypto";
import { PonteError } from "@ponte/common";

export type SeedKind = "mnemonic" | "hex";

export interface SeedMaterial {
  readonly kind: SeedKind;
  /** The phrase, normalised (NFKD, single spaces), for a mnemonic; null for a hex seed. */
  readonly phrase: Buffer | null;
  /** The BIP32 master seed: PBKDF2 of the phrase (empty BIP39 passphrase), or the hex bytes. */
  readonly seed: Buffer;
  /** Non-secret id that tells seeds apart in logs and on refresh. */
  readonly fingerprint: string;
}

const MNEMONIC_WORD_COUNTS = new Set([12, 15, 18, 21, 24]);
// BIP32 allows master seeds of 128 to 512 bits.
const HEX_SEED_MIN_BYTES = 16;
const HEX_SEED_MAX_BYTES = 64;

/**
 * Classifies and normalises a seed string. `where` (source, path, field — never the value) goes
 * into the error so an operator knows which secret to fix. The mnemonic's checksum needs a
 * wordlist, which the chain family's library has: it is checked there, at derivation.
 */
export function parseSeedMaterial(raw: string, where: Record<string, unknown>): SeedMaterial {
  const value = raw.normalize("NFKD").trim();
  if (/^(0x)?[0-9a-fA-F]+$/.test(value)) {
    const hex = value.startsWith("0x") ? value.slice(2) : value;
    const bytes = hex.length / 2;
    if (hex.length % 2 !== 0 || bytes < HEX_SEED_MIN_BYTES || bytes > HEX_SEED_MAX_BYTES) {
      throw invalid(where, "hex_seed_length", `a hex seed must be ${HEX_SEED_MIN_BYTES} to ${HEX_SEED_MAX_BYTES} bytes`);
    }
    const seed = Buffer.from(hex, "hex");
    return { kind: "hex", phrase: null, seed, fingerprint: fingerprintOf(seed) };
  }
  const words = value.split(/\s+/u);
  if (!words.every((w) => /^\p{L}+$/u.test(w))) {
    throw invalid(where, "not_a_seed", "the value is neither a BIP39 mnemonic nor a hex seed");
  }
  if (!MNEMONIC_WORD_COUNTS.has(words.length)) {
    throw invalid(where, "mnemonic_word_count", "a BIP39 mnemonic has 12, 15, 18, 21 or 24 words", { words: words.length });
  }
  const phrase = Buffer.from(words.join(" "), "utf8");
  const seed = pbkdf2Sync(phrase, Buffer.from("mnemonic", "utf8"), 2048, 64, "sha512");
  return { kind: "mnemonic", phrase, seed, fingerprint: fingerprintOf(seed) };
}

/** 32 bits of a domain-separated hash: enough to tell seeds apart, useless to an attacker. */
function fingerprintOf(seed: Buffer): string {
  return createHash("sha256").update("ponte:seed-fingerprint:").update(seed).digest("hex").slice(0, 8);
}

export function wipe(m: SeedMaterial): void {
  m.seed.fill(0);
  m.phrase?.fill(0);
}

function invalid(where: Record<string, unknown>, reason: string, what: string, extra: Record<string, unknown> = {}): PonteError {
  return new PonteError("KEY_SOURCE_INVALID", `Seed at ${describe(where)} is malformed: ${what}`, {
    ...where,
    reason,
    ...extra,
  });
}

export function describe(where: Record<string, unknown>): string {
  if (where.source === "vault") return `vault ${String(where.mount)}/${String(where.path)} field "${String(where.field)}"`;
  if (where.source === "keystore") return `keystore ${String(where.file)}`;
  if (where.source === "env") return `environment variable ${String(where.variable)}`;
  return "the key source";
}
