// The state folder (.ponte/ by default): development secrets made on the first start, the
// Postgres, NATS and anvil data, the children's logs, and stack.json, which exists only while a
// stack runs and tells `npm run demo` (and people) where everything is.
import { generateKeyPairSync, randomBytes, randomInt } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Mnemonic } from "ethers";
import { StartError } from "../errors.js";

/** Marks a folder as ours, so --fresh never wipes a folder someone pointed us at by mistake. */
const MARKER = ".ponte-state";

export interface StatePaths {
  dir: string;
  secrets: string;
  stack: string;
  logs: string;
  postgres: string;
  nats: string;
  anvilState: string;
  chain: string;
  vaultSeed: string;
  /** litecoind's datadir. */
  litecoin: string;
  /** Written when the litecoin chain is made: the database remembers that chain from then on. */
  litecoinRecord: string;
}

export function statePaths(dir: string): StatePaths {
  return {
    dir,
    secrets: join(dir, "secrets.json"),
    stack: join(dir, "stack.json"),
    logs: join(dir, "logs"),
    postgres: join(dir, "postgres"),
    nats: join(dir, "nats"),
    anvilState: join(dir, "anvil-state.json"),
    chain: join(dir, "chain.json"),
    vaultSeed: join(dir, "vault-seed.json"),
    litecoin: join(dir, "litecoin"),
    litecoinRecord: join(dir, "litecoin.json"),
  };
}

/** Creates the folder (or checks it is ours), wiping it first when fresh. */
export function prepareStateDir(p: StatePaths, fresh: boolean): void {
  if (existsSync(p.dir)) {
    const entries = readdirSync(p.dir);
    const ours = entries.includes(MARKER);
    if (!ours && entries.length > 0) {
      throw new StartError(`${p.dir} is not empty and was not made by npm start: choose another --state-dir (or PONTE_STATE_DIR)`);
    }
    if (fresh) rmSync(p.dir, { recursive: true, force: true });
  }
  mkdirSync(p.logs, { recursive: true });
  writeFileSync(join(p.dir, MARKER), "State of a local Ponte (npm start). `npm start -- --fresh` wipes it.\n");
}

/** Development-only secrets, made once per state folder (mode 0600). Never use them elsewhere. */
export interface DevSecrets {
  /** Only when the environment gives none. */
  jwtSecret: string;
  evmMnemonic: string;
  postgresPassword: string;
  vaultRootToken: string;
  /** The EVM agent's Vault token: reads its seed and nothing else. */
  vaultAgentToken: string;
  /** The UTXO (LTC) agent's seed and Vault token (reads that seed and nothing else). */
  utxoMnemonic: string;
  vaultUtxoAgentToken: string;
  /** litecoind's RPC password (user "ponte"). */
  litecoinRpcPassword: string;
  starkbank: { projectId: string; privateKeyPem: string; publicKeyPem: string };
}

function makeSecrets(): DevSecrets {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "secp256k1" });
  return {
    jwtSecret: randomBytes(32).toString("hex"),
    evmMnemonic: Mnemonic.fromEntropy(randomBytes(16)).phrase,
    postgresPassword: randomBytes(12).toString("hex"),
    vaultRootToken: `hvs.dev-root-${randomBytes(12).toString("hex")}`,
    vaultAgentToken: `hvs.dev-agent-${randomBytes(12).toString("hex")}`,
    utxoMnemonic: Mnemonic.fromEntropy(randomBytes(16)).phrase,
    vaultUtxoAgentToken: `hvs.dev-agent-utxo-${randomBytes(12).toString("hex")}`,
    litecoinRpcPassword: randomBytes(12).toString("hex"),
    starkbank: {
      projectId: String(randomInt(1e9, 1e10 - 1)) + String(randomInt(1e5, 1e6 - 1)),
      privateKeyPem: privateKey.export({ type: "sec1", format: "pem" }).toString(),
      publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    },
  };
}

export function loadOrCreateSecrets(p: StatePaths): DevSecrets {
  const kept = existsSync(p.secrets) ? (JSON.parse(readFileSync(p.secrets, "utf8")) as Partial<DevSecrets>) : {};
  // Fields a newer npm start added are filled in; the ones already made stay (the data depends on them).
  const s: DevSecrets = { ...makeSecrets(), ...kept };
  if (Object.keys(kept).length !== Object.keys(s).length) writeFileSync(p.secrets, JSON.stringify(s, null, 2), { mode: 0o600 });
  return s;
}

export interface DemoWallet {
  address: string;
  /** anvil's well-known development key: public knowledge, never holds real funds. */
  privateKey: string;
}

/** What a running stack tells the demo and the curious. Only development credentials. */
export interface StackInfo {
  version: 1;
  /** The npm start process. */
  pid: number;
  startedAt: string;
  stateDir: string;
  gatewayUrl: string;
  coordinatorGrpc: string;
  coordinatorMetricsUrl: string;
  anvil: {
    rpcUrl: string;
    wsUrl: string;
    chainId: number;
    tokens: { symbol: string; address: string; decimals: number }[];
    wallets: DemoWallet[];
    /** The EVM agent's hot wallet (sweeps land there; it pays token sweeps' gas). */
    hotWallet: string;
  };
  /** litecoind regtest and its demo wallet, when LTC is on (development credentials only). */
  litecoin: {
    rpcUrl: string;
    rpcUser: string;
    rpcPassword: string;
    /** The wallet in the node that pays the demo's deposits. */
    wallet: string;
    blockIntervalMs: number;
    /** The UTXO agent's hot wallet (sweeps land there). */
    hotWallet: string | null;
  } | null;
  starkbank: { url: string; webhookUrl: string };
  vault: { url: string } | null;
  /** Only the embedded one's URL (a DATABASE_URL from the environment may hold a real password). */
  postgres: { embedded: boolean; url: string | null };
  nats: { url: string | null; managed: boolean };
  agents: { network: string; running: boolean; reason?: string }[];
  demoUser: {
    sub: string;
    document: string;
    name: string;
    pixKey: { type: "cpf"; key: string };
    /** A key the PIX stand-in fails every transfer to (npm run demo -- --fail-payout). */
    failingPixKey: { type: "email"; key: string };
  };
  tokens: { user: string; admin: string };
  /** Everything npm start runs, so a later start can tell leftovers of a crashed run. */
  children: { name: string; pid: number; cmdline: string[] }[];
}

export function writeStackInfo(p: StatePaths, info: StackInfo): void {
  writeFileSync(p.stack, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
}

export function readStackInfo(path: string): StackInfo | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as StackInfo;
  } catch {
    return undefined;
  }
}

/** Removes stack.json if this process wrote it (never another running stack's). */
export function removeStackInfo(p: StatePaths, owner = process.pid): void {
  if (readStackInfo(p.stack)?.pid === owner) rmSync(p.stack, { force: true });
}

/** True when pid is a live process (not a zombie). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return true;
  }
}

/** The command line of a live process, when /proc tells it. */
export function cmdlineOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((s) => s.length > 0);
  } catch {
    return undefined;
  }
}
