import type { Registry } from "@ponte/common";

/** The value of one metric series (histograms: name_count / name_sum), whatever the label order. */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const base = name.replace(/_(count|sum|bucket)$/, "");
  const m = registry.getSingleMetric(base) ?? registry.getSingleMetric(name);
  if (!m) return undefined;
  const data = await m.get();
  const hit = data.values.find((v) => {
    const metricName = (v as { metricName?: string }).metricName ?? data.name;
    const own = v.labels as Record<string, unknown>;
    return metricName === name && Object.entries(labels).every(([k, val]) => String(own[k]) === val);
  });
  return hit?.value;
}
