// The benchmarks in smoke mode (tiny sizes, one A/B pair) inside `npm test`, so they cannot rot.
// This checks that every benchmark runs end to end and prints well-formed rows — never a speed.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const RUN = fileURLToPath(new URL("../dist/run.js", import.meta.url));
const EXPECTED = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8"];

interface Side {
  value: number;
  runs: number[];
  spread: number;
}

describe("bench --smoke", () => {
  it("runs every benchmark against its baseline and prints well-formed results", () => {
    // The compiled runner, as `npm run bench` runs it (no TypeScript loader).
    const r = spawnSync(process.execPath, [RUN, "--smoke"], { encoding: "utf8", timeout: 170_000, env: process.env });
    const out = r.stdout ?? "";
    expect(r.status, `bench --smoke exited ${r.status}:\n${(r.stderr ?? "").slice(-4000)}`).toBe(0);
    const rows = out
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.filter((x) => "error" in x)).toEqual([]);
    expect([...new Set(rows.map((x) => x.bench))].sort()).toEqual(EXPECTED);
    for (const row of rows) {
      expect(row.mode).toBe("smoke");
      expect(typeof row.name).toBe("string");
      for (const s of [row.ours, row.baseline] as Side[]) {
        expect(Number.isFinite(s.value), `${row.name}: value`).toBe(true);
        expect(s.value).toBeGreaterThanOrEqual(0);
        expect(s.runs.length).toBeGreaterThan(0);
        expect(Number.isFinite(s.spread)).toBe(true);
      }
      // Counts held to an absolute bound (duplicate payouts, wrong states: = 0) have no ratio.
      const absolute = (row.target as { on?: string } | null)?.on === "ours";
      if (!absolute) {
        expect(Number.isFinite(row.ratio as number), `${row.name}: ratio`).toBe(true);
        expect(Array.isArray(row.ratio_range)).toBe(true);
      }
      if (row.target !== null) expect(typeof row.met).toBe("boolean");
    }
    // Every benchmark that ran reports CPU per unit on its headline figure.
    for (const id of ["B1", "B2", "B3", "B4", "B5", "B6", "B7"]) {
      const withCpu = rows.filter((x) => x.bench === id && x.cpu_us_per_unit);
      expect(withCpu.length, `${id} CPU-µs per unit`).toBeGreaterThan(0);
    }
    // The human table follows the JSON lines.
    expect(out).toContain("| figure | ours | baseline |");
  }, 180_000);
});
