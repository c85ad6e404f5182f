// The local-development key source: a JSON file holding the seed encrypted with AES-256-GCM
// under a key stretched from a passphrase by scrypt. GCM's tag makes a wrong passphrase and an
// altered file fail the same way, before any plaintext is used.
import { createCipheriv, createDecipheriv, randomBytes, scrypt, type ScryptOptions } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { PonteError, z, type Logger } from "@ponte/common";
import { parseSeedMaterial } from "./material.js";
import type { KeySource } from "./source.js";
import type { KeystoreSeedConfig } from "./types.js";

export const KEYSTORE_DEFAULT_N = 2 ** 17;
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const SALT_BYTES = 16;
const MIN_N = 2 ** 14;
const MAX_N = 2 ** 20;
// scrypt needs 128·N·r bytes; this bounds what a keystore file can make the agent allocate.
const MAX_SCRYPT_BYTES = 2 ** 30;
const MIN_PASSPHRASE_LENGTH = 8;

const hex = (what: string, bytes?: { exact?: number; min?: number }) =>
  z
    .string()
    .regex(/^(?:[0-9a-fA-F]{2})+$/, { error: `${what} must be hex` })
    .refine((s) => bytes?.exact === undefined || s.length === bytes.exact * 2, { error: `${what} must be ${bytes?.exact} bytes` })
    .refine((s) => bytes?.min === undefined || s.length >= bytes.min * 2, { error: `${what} must be at least ${bytes?.min} bytes` });

const KdfParams = z
  .object({
    N: z
      .number()
      .int()
      .min(MIN_N)
      .max(MAX_N)
      .refine((n) => (n & (n - 1)) === 0, { error: "N must be a power of two" }),
    r: z.number().int().min(1).max(32),
    p: z.number().int().min(1).max(16),
    salt: hex("salt", { min: SALT_BYTES }),
  })
  .refine((k) => 128 * k.N * k.r <= MAX_SCRYPT_BYTES, { error: "N·r needs more than 1 GiB of memory" });

export const KeystoreFileSchema = z.object({
  version: z.literal(1),
  kdf: z.literal("scrypt"),
  kdfparams: KdfParams,
  cipher: z.literal("aes-256-gcm"),
  iv: hex("iv", { exact: IV_BYTES }),
  ciphertext: hex("ciphertext", { min: 1 }),
  tag: hex("tag", { exact: TAG_BYTES }),
});

export type KeystoreFile = z.infer<typeof KeystoreFileSchema>;

export interface CreateKeystoreOptions {
  /** scrypt cost, a power of two from 2^14 to 2^20; 2^17 when omitted. */
  N?: number;
  r?: number;
  p?: number;
}

function deriveKey(passphrase: string, salt: Buffer, k: { N: number; r: number; p: number }): Promise<Buffer> {
  // NFKC so the same passphrase typed through different input methods gives the same key.
  const opts: ScryptOptions = { N: k.N, r: k.r, p: k.p, maxmem: 128 * k.N * k.r * 2 + 2 ** 20 };
  return new Promise((ok, fail) =>
    scrypt(passphrase.normalize("NFKC"), salt, KEY_BYTES, opts, (err, key) => (err ? fail(err) : ok(key))),
  );
}

/** Encrypts a seed (BIP39 mnemonic or hex) into the keystore format; the seed is checked first. */
export async function createKeystore(seed: string, passphrase: string, opts: CreateKeystoreOptions = {}): Promise<KeystoreFile> {
  const material = parseSeedMaterial(seed, { source: "keystore", file: "(new keystore)" });
  material.seed.fill(0);
  material.phrase?.fill(0);
  if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
    throw new PonteError("VALIDATION_ERROR", `The keystore passphrase must have at least ${MIN_PASSPHRASE_LENGTH} characters`, {
      field: "passphrase",
    });
  }
  const params = { N: opts.N ?? KEYSTORE_DEFAULT_N, r: opts.r ?? 8, p: opts.p ?? 1, salt: randomBytes(SALT_BYTES).toString("hex") };
  const checked = KdfParams.safeParse(params);
  if (!checked.success) {
    throw new PonteError("VALIDATION_ERROR", `Invalid scrypt parameters: ${checked.error.issues.map((i) => i.message).join("; ")}`, {
      field: "kdfparams",
    });
  }
  const key = await deriveKey(passphrase, Buffer.from(params.salt, "hex"), params);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const plaintext = Buffer.from(seed.trim(), "utf8");
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  plaintext.fill(0);
  key.fill(0);
  return {
    version: 1,
    kdf: "scrypt",
    kdfparams: params,
    cipher: "aes-256-gcm",
    iv: iv.toString("hex"),
    ciphertext: ciphertext.toString("hex"),
    tag: cipher.getAuthTag().toString("hex"),
  };
}

/**
 * Decrypts a keystore to the seed string. `file` only names the keystore in errors. Throws
 * KEY_SOURCE_INVALID for a malformed file, KEY_SOURCE_DENIED when the tag does not verify.
 */
export async function decryptKeystore(json: unknown, passphrase: string, file = "(keystore)"): Promise<string> {
  const where = { source: "keystore", file };
  const parsed = KeystoreFileSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.map(String).join(".") || "(root)"}: ${i.message}`);
    throw new PonteError("KEY_SOURCE_INVALID", `Keystore ${file} is malformed: ${issues.join("; ")}`, {
      ...where,
      reason: "malformed_keystore",
      fields: parsed.error.issues.map((i) => i.path.map(String).join(".")),
    });
  }
  const ks = parsed.data;
  const key = await deriveKey(passphrase, Buffer.from(ks.kdfparams.salt, "hex"), ks.kdfparams);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(ks.iv, "hex"));
    decipher.setAuthTag(Buffer.from(ks.tag, "hex"));
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([decipher.update(Buffer.from(ks.ciphertext, "hex")), decipher.final()]);
    } catch {
      // GCM reports only "unable to authenticate"; there is nothing more to pass on.
      throw new PonteError("KEY_SOURCE_DENIED", `Keystore ${file} could not be decrypted: wrong passphrase, or the file was altered`, {
        ...where,
        reason: "decrypt_failed",
      });
    }
    const seed = plaintext.toString("utf8");
    plaintext.fill(0);
    return seed;
  } finally {
    key.fill(0);
  }
}

/** Writes a keystore readable by its owner only; refuses to replace a file unless told to. */
export async function writeKeystoreFile(file: string, ks: KeystoreFile, opts: { overwrite?: boolean } = {}): Promise<void> {
  try {
    await writeFile(file, `${JSON.stringify(ks, null, 2)}\n`, { mode: 0o600, flag: opts.overwrite ? "w" : "wx" });
  } catch (e) {
    if (isErrno(e, "EEXIST")) {
      throw new PonteError("VALIDATION_ERROR", `Keystore ${file} already exists; pass --overwrite to replace it`, { file });
    }
    throw e;
  }
}

export function createKeystoreSource(cfg: KeystoreSeedConfig, logger: Logger): KeySource {
  const file = resolve(cfg.file);
  const where = { source: "keystore", file };
  let closed = false;
  return {
    name: "keystore",
    ref: `keystore:${file}`,
    where,
    async read() {
      if (closed) throw new PonteError("KEY_SOURCE_UNAVAILABLE", "The seed handle is closed", { ...where, reason: "closed" });
      let text: string;
      try {
        text = await readFile(file, "utf8");
      } catch (e) {
        if (isErrno(e, "ENOENT")) throw new PonteError("KEY_SOURCE_NOT_FOUND", `Keystore ${file} does not exist`, { ...where, reason: "missing_file" });
        if (isErrno(e, "EACCES")) throw new PonteError("KEY_SOURCE_DENIED", `Keystore ${file} is not readable by this user`, { ...where, reason: "eacces" });
        throw new PonteError("KEY_SOURCE_UNAVAILABLE", `Keystore ${file} could not be read`, { ...where, reason: errnoOf(e) ?? "io_error" });
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new PonteError("KEY_SOURCE_INVALID", `Keystore ${file} is not JSON`, { ...where, reason: "not_json" });
      }
      const raw = await decryptKeystore(json, cfg.passphrase, file);
      logger.debug({ component: "key-source", key_ref: `keystore:${file}` }, "Keystore decrypted");
      return { raw, version: null };
    },
    // A file has no lease or token that could be revoked behind our back.
    async check() {
      if (closed) throw new PonteError("KEY_SOURCE_UNAVAILABLE", "The seed handle is closed", { ...where, reason: "closed" });
    },
    close() {
      closed = true;
    },
  };
}

function errnoOf(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined;
}

function isErrno(e: unknown, code: string): boolean {
  return errnoOf(e) === code;
}
