// Our code and its baseline take turns on the same machine: warm-up, then A B A B A B.

export async function interleave<T>(o: {
  reps: number;
  log: (msg: string) => void;
  label: string;
  warmup?: () => Promise<void>;
  ours: (rep: number) => Promise<T>;
  baseline: (rep: number) => Promise<T>;
}): Promise<{ ours: T[]; baseline: T[] }> {
  if (o.warmup) {
    o.log(`${o.label}: warm-up`);
    await o.warmup();
  }
  const ours: T[] = [];
  const baseline: T[] = [];
  for (let i = 0; i < o.reps; i++) {
    o.log(`${o.label}: ours ${i + 1}/${o.reps}`);
    ours.push(await o.ours(i));
    o.log(`${o.label}: baseline ${i + 1}/${o.reps}`);
    baseline.push(await o.baseline(i));
  }
  return { ours, baseline };
}
