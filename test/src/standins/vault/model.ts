// The stand-in's state: KV v2 secrets with versions, tokens, ACL policies, AppRole roles and the
// seal. Shapes follow Vault's HTTP API; the ACL is a simplification (see capabilitiesFor).
import { randomBytes, randomUUID } from "node:crypto";
import { z } from "@ponte/common";

export const CAPABILITIES = ["create", "read", "update", "patch", "delete", "list", "sudo", "deny"] as const;
export type Capability = (typeof CAPABILITIES)[number];

/** Vault's JSON policy form: {"path": {"secret/data/ponte/*": {"capabilities": ["read"]}}}. */
export interface VaultPolicy {
  path: Record<string, { capabilities: Capability[] }>;
}

export const VaultPolicySchema = z.object({
  path: z.record(z.string(), z.object({ capabilities: z.array(z.enum(CAPABILITIES)) })),
});

// Vault's built-in default policy, the parts a token needs to look after itself.
export const DEFAULT_POLICY: VaultPolicy = {
  path: {
    "auth/token/lookup-self": { capabilities: ["read"] },
    "auth/token/renew-self": { capabilities: ["update"] },
    "auth/token/revoke-self": { capabilities: ["update"] },
    "sys/capabilities-self": { capabilities: ["update"] },
  },
};

export interface TokenEntry {
  id: string;
  accessor: string;
  policies: string[];
  displayName: string;
  /** The endpoint that created it: auth/token/root, auth/token/create, auth/approle/login. */
  path: string;
  meta: Record<string, string> | null;
  issuedAt: number;
  /** Seconds; 0 never expires (root). */
  creationTtl: number;
  expiresAt: number | null;
  renewable: boolean;
  orphan: boolean;
}

export interface KvVersion {
  data: Record<string, unknown> | null;
  createdTime: string;
  deletionTime: string;
  destroyed: boolean;
}

export interface KvSecret {
  versions: Map<number, KvVersion>;
  currentVersion: number;
  createdTime: string;
  updatedTime: string;
}

export interface AppRoleRole {
  name: string;
  roleId: string;
  /** secret_id → uses left (0 = unlimited). */
  secretIds: Map<string, { accessor: string; usesLeft: number; limited: boolean }>;
  tokenPolicies: string[];
  tokenTtl: number;
  secretIdNumUses: number;
  bindSecretId: boolean;
}

/** Vault keeps 10 versions of a KV v2 secret unless the mount says otherwise. */
export const KV_MAX_VERSIONS = 10;

export const newToken = () => `hvs.${randomBytes(18).toString("base64url")}`;
export const newAccessor = () => randomBytes(12).toString("base64url");
export const newUuid = (): string => randomUUID();

/** Vault durations: a number of seconds or "90s", "15m", "1h", "768h", "1h30m". */
export function parseDuration(v: unknown): number | null {
  if (typeof v === "number" && Number.isInteger(v) && v >= 0) return v;
  if (typeof v !== "string") return null;
  if (/^\d+$/.test(v)) return Number(v);
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(v);
  if (!m || v === "") return null;
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

const Duration = z.union([z.number().int().min(0), z.string()]).refine((v) => parseDuration(v) !== null, { error: "must be seconds or a duration like 1h" });

/** Initial state: the optional JSON file of main.ts, or `seed` of startVaultStandin. */
export const VaultStandinSeedSchema = z.object({
  kv_mounts: z.array(z.string()).optional(),
  approle_mounts: z.array(z.string()).optional(),
  policies: z.record(z.string(), VaultPolicySchema).optional(),
  secrets: z.array(z.object({ mount: z.string().default("secret"), path: z.string(), data: z.record(z.string(), z.unknown()) })).optional(),
  tokens: z
    .array(z.object({ id: z.string().min(1), policies: z.array(z.string()).default([]), ttl: Duration.default(0), renewable: z.boolean().default(true) }))
    .optional(),
  approle: z
    .array(
      z.object({
        mount: z.string().default("approle"),
        role_name: z.string().min(1),
        role_id: z.string().optional(),
        secret_id: z.string().optional(),
        token_policies: z.array(z.string()).default([]),
        token_ttl: Duration.default(3600),
        secret_id_num_uses: z.number().int().min(0).default(0),
      }),
    )
    .optional(),
});
export type VaultStandinSeed = z.input<typeof VaultStandinSeedSchema>;

/**
 * Capabilities of a set of policies on a path. Vault picks the most specific matching rule per
 * policy (exact, then the longest glob) and merges across policies; `deny` wins. Globs: a
 * trailing `*` matches any suffix, `+` one path segment.
 */
export function capabilitiesFor(policies: VaultPolicy[], path: string): Set<Capability> {
  const out = new Set<Capability>();
  for (const policy of policies) {
    let best: { pattern: string; caps: Capability[]; exact: boolean } | null = null;
    for (const [pattern, rule] of Object.entries(policy.path)) {
      const exact = pattern === path;
      if (!exact && !globMatch(pattern, path)) continue;
      if (!best || (exact && !best.exact) || (exact === best.exact && pattern.length > best.pattern.length)) {
        best = { pattern, caps: rule.capabilities, exact };
      }
    }
    for (const c of best?.caps ?? []) out.add(c);
  }
  if (out.has("deny")) return new Set(["deny"]);
  return out;
}

function globMatch(pattern: string, path: string): boolean {
  const prefix = pattern.endsWith("*");
  const p = prefix ? pattern.slice(0, -1) : pattern;
  const pSeg = p.split("/");
  const sSeg = path.split("/");
  if (!prefix && pSeg.length !== sSeg.length) return false;
  for (let i = 0; i < pSeg.length; i++) {
    const want = pSeg[i]!;
    const got = sSeg[i];
    if (got === undefined) return false;
    const last = i === pSeg.length - 1;
    if (want === "+") continue;
    if (last && prefix) return got.startsWith(want);
    if (want !== got) return false;
  }
  return true;
}
