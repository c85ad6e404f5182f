import type { Row } from "./result.js";

const fmt = (x: number | null | undefined, digits = 2): string => {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  const a = Math.abs(x);
  if (a >= 10_000) return Math.round(x).toLocaleString("en-US");
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(digits);
};
const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "–" : `±${(x * 50).toFixed(0)}%`);

export const TABLE_HEADER = [
  "| figure | ours | baseline | ratio (pairs) | target | met | spread ours / base | CPU-µs per unit ours / base |",
  "|---|---|---|---|---|---|---|---|",
];

/** One Markdown table row (also what the console shows). */
export function tableRow(r: Row): string {
  const unit = r.unit ? ` ${r.unit}` : "";
  const ratio = r.ratio_range && r.ratio_range[0] !== r.ratio_range[1] ? `${fmt(r.ratio)} (${fmt(r.ratio_range[0])}–${fmt(r.ratio_range[1])})` : fmt(r.ratio);
  const met = r.met === null ? "–" : r.met ? "yes" : "**no**";
  const cpu = r.cpu_us_per_unit ? `${fmt(r.cpu_us_per_unit.ours, 1)} / ${fmt(r.cpu_us_per_unit.baseline, 1)} per ${r.cpu_us_per_unit.unit}` : "–";
  return `| ${r.name} | ${fmt(r.ours?.value)}${unit} | ${fmt(r.baseline?.value)}${unit} | ${ratio} | ${r.target?.text ?? "–"} | ${met} | ${pct(r.ours?.spread)} / ${pct(r.baseline?.spread)} | ${cpu} |`;
}
