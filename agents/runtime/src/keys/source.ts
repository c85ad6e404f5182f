/** One place a seed can come from; loadSeed() wraps it in a SeedHandle. */
export interface KeySource {
  readonly name: "vault" | "keystore" | "env";
  /** Safe to log and to store as a key reference. */
  readonly ref: string;
  /** Non-secret coordinates for error details: source, mount/path/field or file. */
  readonly where: Record<string, unknown>;
  /** The seed string as stored, and the KV version it came from (null for a keystore or env). */
  read(): Promise<{ raw: string; version: number | null }>;
  /** Throws when the source no longer vouches for this process (see SeedHandle.ensureFresh). */
  check(): Promise<void>;
  close(): void;
}
