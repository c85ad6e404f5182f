// What every benchmark produces: one row per figure, ours beside its bare baseline.

export interface Target {
  /** ">=": ours/baseline must be at least value (throughput); "<=": at most (latency, memory). */
  op: ">=" | "<=";
  value: number;
  /** How the README states it ("≥ 0.70"). */
  text?: string;
  /** What the target applies to: the ratio (default) or ours' own figure (an absolute bound). */
  on?: "ratio" | "ours";
}

export interface Side {
  /** Median over the interleaved repetitions. */
  value: number;
  /** Every repetition, in run order. */
  runs: number[];
  /** (max − min) / median over the repetitions, as a fraction. */
  spread: number;
}

export interface Row {
  bench: string;
  /** "B1 assets req/s". */
  name: string;
  unit: string;
  mode: "full" | "smoke";
  ours: Side | null;
  baseline: Side | null;
  /** ours / baseline of the medians. */
  ratio: number | null;
  /** ours_i / baseline_i of each interleaved pair: min and max. */
  ratio_range: [number, number] | null;
  target: Target | null;
  /** null: no target for this figure (context). */
  met: boolean | null;
  /** CPU time of the processes doing the work, per unit (request, block, transition, address). */
  cpu_us_per_unit: { ours: number | null; baseline: number | null; unit: string } | null;
  note?: string;
  extra?: Record<string, unknown>;
}

export interface BenchContext {
  smoke: boolean;
  /** Interleaved repetitions per side (A B A B A B = 3). */
  reps: number;
  pgUrl: string;
  natsUrl: string;
  cacheDir: string;
  log(msg: string): void;
}

export interface Benchmark {
  id: string;
  title: string;
  run(ctx: BenchContext): Promise<Row[]>;
}

export const median = (xs: number[]): number => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export const percentile = (sorted: number[], p: number): number => {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
};

export function side(runs: number[]): Side {
  const m = median(runs);
  const spread = runs.length > 1 && m !== 0 ? (Math.max(...runs) - Math.min(...runs)) / Math.abs(m) : 0;
  return { value: m, runs, spread };
}

/** A row comparing ours and baseline over interleaved pairs (ours[i] ran right before baseline[i]). */
export function compare(o: {
  bench: string;
  name: string;
  unit: string;
  mode: "full" | "smoke";
  ours: number[];
  baseline: number[];
  target?: Target | null;
  cpu?: { ours: number | null; baseline: number | null; unit: string } | null;
  note?: string;
  extra?: Record<string, unknown>;
}): Row {
  const a = side(o.ours);
  const b = side(o.baseline);
  const ratio = b.value !== 0 ? a.value / b.value : null;
  const pairs = o.ours.map((x, i) => (o.baseline[i] ? x / o.baseline[i]! : Number.NaN)).filter((x) => Number.isFinite(x));
  const target = o.target ?? null;
  return {
    bench: o.bench,
    name: o.name,
    unit: o.unit,
    mode: o.mode,
    ours: a,
    baseline: b,
    ratio,
    ratio_range: pairs.length ? [Math.min(...pairs), Math.max(...pairs)] : null,
    target,
    met: metOf(target, target?.on === "ours" ? a.value : ratio),
    cpu_us_per_unit: o.cpu ?? null,
    ...(o.note ? { note: o.note } : {}),
    ...(o.extra ? { extra: o.extra } : {}),
  };
}

export const ge = (value: number): Target => ({ op: ">=", value, text: `≥ ${value.toFixed(2)}` });
export const le = (value: number, text?: string): Target => ({ op: "<=", value, text: text ?? `≤ ${value}×` });

function metOf(target: Target | null, x: number | null): boolean | null {
  if (!target || x === null || !Number.isFinite(x)) return null;
  return target.op === ">=" ? x >= target.value : x <= target.value;
}

/** An absolute bound on ours' figure ("≤ 25 MB"). */
export const absMax = (value: number, text: string): Target => ({ op: "<=", value, text, on: "ours" });
