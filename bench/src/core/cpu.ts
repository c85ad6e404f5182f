import { readFileSync } from "node:fs";

// CPU time per unit of work. The benchmark's own process uses process.cpuUsage(); the processes
// under test (coordinator, gateway, agent, baselines run as children) are read from
// /proc/<pid>/stat (utime + stime, the same counters process.cpuUsage reports, in clock ticks).

const TICK_US = 10_000; // CLK_TCK = 100 on Linux

/** User + system CPU of a process so far, in µs; null when it is gone or /proc is absent. */
export function procCpuUs(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may contain spaces: fields start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) * TICK_US;
  } catch {
    return null;
  }
}

export const selfCpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/**
 * Measures CPU of several processes (by pid) and/or this process across a section. A process that
 * exits (a benchmark kills one) counts up to its last sample(); add() starts counting a new one.
 */
export function cpuMeter(pids: (number | undefined)[], self = false) {
  const start = new Map<number, number>();
  const last = new Map<number, number>();
  let complete = true;
  const add = (p: number | undefined) => {
    const v = procCpuUs(p);
    if (p === undefined || v === null) {
      complete = false;
      return;
    }
    start.set(p, v);
    last.set(p, v);
  };
  const sample = () => {
    for (const p of start.keys()) {
      const v = procCpuUs(p);
      if (v !== null) last.set(p, v);
    }
  };
  for (const p of pids) add(p);
  const self0 = selfCpuUs();
  return {
    add,
    sample,
    /** µs used since the meter started. */
    stop(): number | null {
      sample();
      if (!complete) return null;
      let total = 0;
      for (const [p, v] of start) total += last.get(p)! - v;
      return total + (self ? selfCpuUs() - self0 : 0);
    },
  };
}
