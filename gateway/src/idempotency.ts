import { createHash } from "node:crypto";

/** JSON with object keys sorted at every level and no whitespace: equal values, equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * What the coordinator stores beside an Idempotency-Key to tell a replay (same body → the first
 * answer) from a reuse (another body → 409): sha256 of the validated body's canonical JSON, hex.
 */
export const requestHash = (body: unknown): string => createHash("sha256").update(canonicalJson(body)).digest("hex");
