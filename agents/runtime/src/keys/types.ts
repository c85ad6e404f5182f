import type { SeedKind } from "./material.js";

export type VaultAuthConfig =
  | { method: "token"; token: string }
  | {
      method: "approle";
      roleId: string;
      secretId: string;
      /** Where the AppRole auth method is mounted; "approle" when omitted. */
      mount?: string;
    };

export interface VaultSeedConfig {
  source: "vault";
  /** e.g. https://vault.internal:8200 */
  address: string;
  /** The KV v2 mount; "secret" when omitted. */
  mount?: string;
  /** Path inside the mount, e.g. "ponte/agents/evm" (read as <mount>/data/<path>). */
  path: string;
  /** Key inside the secret's data; "seed" when omitted. */
  field?: string;
  auth: VaultAuthConfig;
  /** Per request to Vault; 5000 when omitted. */
  timeoutMs?: number;
  /** Vault Enterprise namespace (X-Vault-Namespace), when used. */
  namespace?: string;
}

export interface KeystoreSeedConfig {
  source: "keystore";
  file: string;
  passphrase: string;
}

/**
 * Development only: the seed from an environment variable. loadSeedConfig refuses it when
 * NODE_ENV=production.
 */
export interface EnvSeedConfig {
  source: "env";
  /** The variable's name: the key reference is `env:<variable>`. */
  variable: string;
  value: string;
}

export type SeedSourceConfig = VaultSeedConfig | KeystoreSeedConfig | EnvSeedConfig;

/** What signing and derivation code may read. */
export interface SeedAccess {
  readonly kind: SeedKind;
  /** Non-secret, 8 hex characters: tells seeds apart in logs. */
  readonly fingerprint: string;
  /** The BIP39 phrase; throws KEY_SOURCE_INVALID when the source holds a hex seed. */
  mnemonic(): string;
  /** A copy of the 16–64 byte BIP32 master seed (BIP39 seed with an empty passphrase for a mnemonic). */
  seedBytes(): Uint8Array;
}

export interface SeedHandle extends SeedAccess {
  readonly source: SeedSourceConfig["source"];
  /**
   * Where the seed lives, safe to store and log (a key reference, never the key):
   * `vault:<mount>/<path>#<field>`, `keystore:<file>` or `env:<variable>`.
   */
  readonly ref: string;
  /** KV v2 version read last; null for a keystore or env. */
  readonly version: number | null;
  /**
   * Confirms the source still vouches for this process: for Vault, the token is looked up
   * (an AppRole token that was revoked or expired is replaced by a new login). Throws
   * KEY_SOURCE_UNAVAILABLE (unreachable, sealed) or KEY_SOURCE_DENIED (token revoked). Call it
   * before each signing batch; derivation for watching does not need it.
   */
  ensureFresh(): Promise<void>;
  /** ensureFresh(), then fn: the way signing code should reach the seed. */
  withSeed<T>(fn: (seed: SeedAccess) => Promise<T> | T): Promise<T>;
  /**
   * Reads the secret again. A different seed is refused (KEY_SOURCE_INVALID) and the one in
   * memory kept: addresses already handed out were derived from it.
   */
  refresh(): Promise<void>;
  /** Zeroes the seed in memory; every accessor throws afterwards. */
  close(): Promise<void>;
}
