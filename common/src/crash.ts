/**
 * Fault injection for the crash tests: when PONTE_CRASH_AT names this point, the process kills
 * itself with SIGKILL right here, as a power cut would. Unset in production, where it does nothing.
 */
export function crashPoint(name: string): void {
  const at = process.env.PONTE_CRASH_AT;
  if (at && at.split(",").includes(name)) process.kill(process.pid, "SIGKILL");
}
