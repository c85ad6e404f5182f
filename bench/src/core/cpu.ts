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

/** Measures CPU of several processes (by pid) and/or this process across a section. */
export function cpuMeter(pids: (number | undefined)[], self = false) {
  const read = () => {
    let total = 0;
    for (const p of pids) {
      const v = procCpuUs(p);
      if (v === null) return null;
      total += v;
    }
    return total + (self ? selfCpuUs() : 0);
  };
  const start = read();
  return {
    /** µs used since the meter started. */
    stop(): number | null {
      const end = read();
      return start === null || end === null ? null : end - start;
    },
  };
}
