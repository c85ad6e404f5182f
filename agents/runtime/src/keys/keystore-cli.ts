// Encrypts a seed into a local-development keystore, or checks that one opens.
//   KEYSTORE_PASSPHRASE=… node dist/keys/keystore-cli.js --out dev-keystore.json < seed.txt
//   KEYSTORE_PASSPHRASE=… node dist/keys/keystore-cli.js --verify dev-keystore.json
// The seed comes from stdin or KEYSTORE_SEED and the passphrase from KEYSTORE_PASSPHRASE, never
// from arguments (those show in `ps` and shell history). Prints one JSON line: file, kind, fingerprint.
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { PonteError } from "@ponte/common";
import { createKeystore, decryptKeystore, writeKeystoreFile } from "./keystore.js";
import { parseSeedMaterial, wipe } from "./material.js";

const USAGE = `usage: keystore-cli --out <file> [--overwrite] [--scrypt-n <power of two>]   (seed on stdin or in KEYSTORE_SEED)
       keystore-cli --verify <file>
The passphrase is read from KEYSTORE_PASSPHRASE.`;

export interface CliIo {
  env: NodeJS.ProcessEnv;
  stdin: AsyncIterable<Buffer | string> & { isTTY?: boolean };
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

/** Returns the exit code. */
export async function runKeystoreCli(argv: string[], io: CliIo): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        out: { type: "string" },
        verify: { type: "string" },
        overwrite: { type: "boolean", default: false },
        "scrypt-n": { type: "string" },
        help: { type: "boolean", default: false },
      },
      strict: true,
    }).values;
  } catch (e) {
    io.stderr(`${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    io.stdout(USAGE);
    return 0;
  }
  if (!args.out === !args.verify) {
    io.stderr(`give exactly one of --out and --verify\n${USAGE}`);
    return 2;
  }
  const passphrase = io.env.KEYSTORE_PASSPHRASE;
  if (!passphrase) {
    io.stderr("KEYSTORE_PASSPHRASE is required");
    return 2;
  }
  try {
    if (args.verify) {
      const file = resolve(args.verify);
      let json: unknown;
      try {
        json = JSON.parse(await readFile(file, "utf8"));
      } catch (e) {
        // JSON.parse quotes the start of its input: a plaintext seed file must not reach stderr.
        io.stderr(e instanceof SyntaxError ? `${file} is not a JSON keystore` : e instanceof Error ? e.message : String(e));
        return 1;
      }
      const seed = await decryptKeystore(json, passphrase, file);
      const m = parseSeedMaterial(seed, { source: "keystore", file });
      io.stdout(JSON.stringify({ file, ok: true, seed_kind: m.kind, seed_fingerprint: m.fingerprint }));
      wipe(m);
      return 0;
    }
    const N = args["scrypt-n"] === undefined ? undefined : Number(args["scrypt-n"]);
    if (N !== undefined && !Number.isSafeInteger(N)) {
      io.stderr("--scrypt-n must be an integer");
      return 2;
    }
    const seed = io.env.KEYSTORE_SEED ?? (await readAll(io));
    const file = resolve(args.out!);
    const ks = await createKeystore(seed, passphrase, N === undefined ? {} : { N });
    await writeKeystoreFile(file, ks, { overwrite: args.overwrite });
    const m = parseSeedMaterial(seed, { source: "keystore", file });
    io.stdout(JSON.stringify({ file, ok: true, seed_kind: m.kind, seed_fingerprint: m.fingerprint }));
    wipe(m);
    return 0;
  } catch (e) {
    // PonteError messages here never contain the seed or the passphrase.
    io.stderr(e instanceof PonteError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e));
    return 1;
  }
}

async function readAll(io: CliIo): Promise<string> {
  if (io.stdin.isTTY) io.stderr("Type or paste the seed, then press Ctrl-D:");
  const chunks: Buffer[] = [];
  for await (const c of io.stdin) chunks.push(typeof c === "string" ? Buffer.from(c, "utf8") : c);
  const s = Buffer.concat(chunks).toString("utf8");
  for (const c of chunks) c.fill(0);
  return s;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await runKeystoreCli(process.argv.slice(2), {
    env: process.env,
    stdin: process.stdin,
    stdout: (l) => process.stdout.write(`${l}\n`),
    stderr: (l) => process.stderr.write(`${l}\n`),
  });
}
