import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { inspect } from "node:util";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PonteError } from "@ponte/common";
import { createKeystore, decryptKeystore, loadSeed, writeKeystoreFile, type KeystoreFile } from "./index.js";
import { runKeystoreCli } from "./keystore-cli.js";

// BIP39's published vector ("abandon … about", empty passphrase).
const MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
const MNEMONIC_SEED = "5eb00bbddcf069084889a8ab9155568165f5c453ccb85e70811aaed6f6da5fc19a5ac40b389cd370d086206dec8aa6c43daea6690f20ad3d8d48b2d2ce9e38e4";
const HEX_SEED = "000102030405060708090a0b0c0d0e0f";
const PASS = "correct horse battery staple";
const FAST = { N: 2 ** 14 };

function captureLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  // No redaction on purpose: the code must not hand secrets to the logger at all.
  return { logger: pino({ level: "trace" }, stream), text: () => lines.join("") };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ponte-keystore-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string; details: Record<string, unknown> }> {
  const e = await p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(PonteError);
  const pe = e as PonteError;
  return { code: pe.code, message: pe.message, details: pe.details };
}

describe("keystore", () => {
  it("round-trips a mnemonic and a hex seed", async () => {
    for (const seed of [MNEMONIC, HEX_SEED]) {
      const ks = await createKeystore(seed, PASS, FAST);
      expect(ks).toMatchObject({ version: 1, kdf: "scrypt", cipher: "aes-256-gcm", kdfparams: { N: 2 ** 14, r: 8, p: 1 } });
      expect(JSON.stringify(ks)).not.toContain(seed);
      expect(await decryptKeystore(ks, PASS)).toBe(seed);
    }
  });

  it("uses the default cost when none is given", async () => {
    const ks = await createKeystore(HEX_SEED, PASS);
    expect(ks.kdfparams.N).toBe(2 ** 17);
    expect(await decryptKeystore(ks, PASS)).toBe(HEX_SEED);
  });

  it("refuses a wrong passphrase with KEY_SOURCE_DENIED", async () => {
    const ks = await createKeystore(MNEMONIC, PASS, FAST);
    const e = await codeOf(decryptKeystore(ks, "not the passphrase", "dev.json"));
    expect(e.code).toBe("KEY_SOURCE_DENIED");
    expect(e.message).toMatch(/dev\.json could not be decrypted: wrong passphrase, or the file was altered/);
  });

  it("refuses an altered ciphertext, tag or iv", async () => {
    const ks = await createKeystore(MNEMONIC, PASS, FAST);
    const flip = (h: string) => (h[0] === "0" ? "1" : "0") + h.slice(1);
    for (const altered of [
      { ...ks, ciphertext: flip(ks.ciphertext) },
      { ...ks, tag: flip(ks.tag) },
      { ...ks, iv: flip(ks.iv) },
      { ...ks, kdfparams: { ...ks.kdfparams, salt: flip(ks.kdfparams.salt) } },
    ] satisfies KeystoreFile[]) {
      expect((await codeOf(decryptKeystore(altered, PASS))).code).toBe("KEY_SOURCE_DENIED");
    }
  });

  it("names the malformed fields of a broken file", async () => {
    const ks = await createKeystore(MNEMONIC, PASS, FAST);
    const e = await codeOf(decryptKeystore({ ...ks, cipher: "aes-128-cbc", iv: "zz", kdfparams: { ...ks.kdfparams, N: 1000 } }, PASS));
    expect(e.code).toBe("KEY_SOURCE_INVALID");
    expect(e.details.fields).toEqual(expect.arrayContaining(["cipher", "iv", "kdfparams.N"]));
  });

  it("refuses weak passphrases and non-seeds at creation, without echoing them", async () => {
    await expect(createKeystore(MNEMONIC, "short", FAST)).rejects.toMatchObject({ code: "VALIDATION_ERROR" });
    const e = await codeOf(createKeystore("hunter2 is my password", PASS, FAST));
    expect(e.code).toBe("KEY_SOURCE_INVALID");
    expect(e.message).not.toContain("hunter2");
  });

  it("loads through loadSeed, and the seed reaches neither logs nor JSON", async () => {
    const file = join(dir, "load.json");
    await writeKeystoreFile(file, await createKeystore(MNEMONIC, PASS, FAST));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const cap = captureLogger();
    const handle = await loadSeed({ source: "keystore", file, passphrase: PASS }, cap.logger);
    expect(handle.kind).toBe("mnemonic");
    expect(handle.mnemonic()).toBe(MNEMONIC);
    expect(Buffer.from(handle.seedBytes()).toString("hex")).toBe(MNEMONIC_SEED);
    expect(handle.ref).toBe(`keystore:${file}`);
    await handle.ensureFresh();
    expect(await handle.withSeed((s) => s.fingerprint)).toBe(handle.fingerprint);
    await handle.refresh();
    for (const shown of [JSON.stringify(handle), inspect(handle), cap.text()]) {
      expect(shown).not.toContain("abandon");
      expect(shown).not.toContain(MNEMONIC_SEED.slice(0, 16));
      expect(shown).not.toContain(PASS);
    }
    expect(cap.text()).toContain(handle.fingerprint);
    await handle.close();
    expect(() => handle.seedBytes()).toThrow(PonteError);
    await expect(handle.ensureFresh()).rejects.toMatchObject({ code: "KEY_SOURCE_UNAVAILABLE" });
  });

  it("gives clear errors for a missing file, a wrong passphrase and a non-JSON file", async () => {
    const { logger } = captureLogger();
    expect((await codeOf(loadSeed({ source: "keystore", file: join(dir, "nope.json"), passphrase: PASS }, logger))).code).toBe("KEY_SOURCE_NOT_FOUND");
    const file = join(dir, "wrong.json");
    await writeKeystoreFile(file, await createKeystore(HEX_SEED, PASS, FAST));
    const e = await codeOf(loadSeed({ source: "keystore", file, passphrase: "wrong passphrase" }, logger));
    expect(e.code).toBe("KEY_SOURCE_DENIED");
    expect(e.message).toContain(file);
    const plain = join(dir, "plain.txt");
    await writeFile(plain, MNEMONIC);
    const p = await codeOf(loadSeed({ source: "keystore", file: plain, passphrase: PASS }, logger));
    expect(p.code).toBe("KEY_SOURCE_INVALID");
    expect(p.message).not.toContain("abandon");
  });

  it("refuses to swap in a different seed on refresh", async () => {
    const file = join(dir, "swap.json");
    await writeKeystoreFile(file, await createKeystore(MNEMONIC, PASS, FAST));
    const handle = await loadSeed({ source: "keystore", file, passphrase: PASS }, captureLogger().logger);
    await writeKeystoreFile(file, await createKeystore(HEX_SEED, PASS, FAST), { overwrite: true });
    await expect(handle.refresh()).rejects.toMatchObject({ code: "KEY_SOURCE_INVALID", details: { reason: "seed_changed" } });
    expect(handle.mnemonic()).toBe(MNEMONIC);
  });

  it("writeKeystoreFile will not replace a file unless told to", async () => {
    const file = join(dir, "once.json");
    const ks = await createKeystore(HEX_SEED, PASS, FAST);
    await writeKeystoreFile(file, ks);
    await expect(writeKeystoreFile(file, ks)).rejects.toMatchObject({ code: "VALIDATION_ERROR" });
  });
});

describe("keystore-cli", () => {
  const run = async (argv: string[], env: Record<string, string>, stdin = "") => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runKeystoreCli(argv, {
      env,
      stdin: Readable.from([Buffer.from(stdin)]),
      stdout: (l) => out.push(l),
      stderr: (l) => err.push(l),
    });
    return { code, out: out.join("\n"), err: err.join("\n") };
  };

  it("encrypts a seed from stdin, verifies it, and never prints it", async () => {
    const file = join(dir, "cli.json");
    const made = await run(["--out", file, "--scrypt-n", String(2 ** 14)], { KEYSTORE_PASSPHRASE: PASS }, `${MNEMONIC}\n`);
    expect(made.code).toBe(0);
    expect(JSON.parse(made.out)).toMatchObject({ file, ok: true, seed_kind: "mnemonic" });
    expect(await decryptKeystore(JSON.parse(await readFile(file, "utf8")), PASS)).toBe(MNEMONIC);
    const verified = await run(["--verify", file], { KEYSTORE_PASSPHRASE: PASS });
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.out).seed_fingerprint).toBe(JSON.parse(made.out).seed_fingerprint);
    for (const o of [made.out, made.err, verified.out, verified.err]) expect(o).not.toContain("abandon");
  });

  it("takes the seed from KEYSTORE_SEED, and reports a wrong passphrase", async () => {
    const file = join(dir, "cli-env.json");
    expect((await run(["--out", file, "--scrypt-n", String(2 ** 14)], { KEYSTORE_PASSPHRASE: PASS, KEYSTORE_SEED: HEX_SEED })).code).toBe(0);
    const bad = await run(["--verify", file], { KEYSTORE_PASSPHRASE: "wrong passphrase" });
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^KEY_SOURCE_DENIED: .*wrong passphrase/);
  });

  it("refuses without a passphrase or with both modes", async () => {
    expect((await run(["--out", join(dir, "x.json")], {})).code).toBe(2);
    expect((await run(["--out", "a", "--verify", "b"], { KEYSTORE_PASSPHRASE: PASS })).code).toBe(2);
    expect((await run(["--seed", MNEMONIC], { KEYSTORE_PASSPHRASE: PASS })).code).toBe(2);
  });
});
