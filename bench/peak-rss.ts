// This process's peak resident memory, MiB. Linux's VmHWM counts from this process's exec; resourceUsage's
// maxRSS is carried across exec from the parent's RSS at fork, so a child of a large bench process would
// report at least the parent's size.
import { readFileSync } from "node:fs";

export function peakRssMiB(): number {
  try {
    const kb = /VmHWM:\s*(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
    if (kb) return Number(kb) / 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS / 1024;
}
