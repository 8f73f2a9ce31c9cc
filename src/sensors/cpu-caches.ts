// Which CPUs the kernel believes share a last-level cache: for the real benchmarks' notes, and
// for `weir run`'s hint that placement protects latency on this host. It matters to latency
// beside a hog: when a task wakes, the kernel looks for an idle CPU only
// inside its shared-cache scheduling domain (kernel/sched/fair.c, select_idle_sibling: with no
// such domain the task goes to the CPU the wake-up chose, the waker's or its previous one, idle
// or not). On x86 the kernel builds that domain from the caches CPUID reports, which it also
// shows under /sys/devices/system/cpu/cpuN/cache/; a hypervisor that reports none leaves every
// CPU in a domain of its own.
import fs from "node:fs";

/** One CPU's highest-level cache as sysfs shows it; null when the CPU has no cache directory. */
export interface CpuLlc {
  cpu: number;
  llc: { level: number; sharedCpuList: string } | null;
}

const SYS_CPU = "/sys/devices/system/cpu";

/** Every CPU sysfs lists (online or not) with its last-level cache (index* with the highest `level`). */
export function readLlc(root = SYS_CPU): CpuLlc[] {
  const cpus = fs
    .readdirSync(root)
    .filter((n) => /^cpu\d+$/.test(n))
    .map((n) => Number(n.slice(3)))
    .sort((a, b) => a - b);
  return cpus.map((cpu) => {
    const dir = `${root}/cpu${cpu}/cache`;
    let best: CpuLlc["llc"] = null;
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir).filter((n) => n.startsWith("index"));
    } catch {
      return { cpu, llc: null };
    }
    for (const n of names) {
      try {
        const level = Number(fs.readFileSync(`${dir}/${n}/level`, "utf8").trim());
        const sharedCpuList = fs.readFileSync(`${dir}/${n}/shared_cpu_list`, "utf8").trim();
        if (!best || level > best.level) best = { level, sharedCpuList };
      } catch {
        // an index without the two files says nothing; the others still do
      }
    }
    return { cpu, llc: best };
  });
}

/**
 * Whether the kernel looks for an idle CPU among `cpus` when a task wakes: some two of them
 * share a last-level cache (the scheduling domain select_idle_sibling searches). False when
 * the host reported no cache topology or each CPU's cache is its own.
 */
export function wakeupSearchesCpus(caches: CpuLlc[], cpus: readonly number[]): boolean {
  const groupOf = new Map<number, string>();
  for (const c of caches) if (c.llc) groupOf.set(c.cpu, c.llc.sharedCpuList);
  const seen = new Map<string, number>();
  for (const cpu of cpus) {
    const g = groupOf.get(cpu);
    if (g === undefined) continue;
    const n = (seen.get(g) ?? 0) + 1;
    if (n >= 2) return true;
    seen.set(g, n);
  }
  return false;
}

/** One sentence for a benchmark's notes: which CPUs share a last-level cache, and what follows. */
export function describeLlc(cpus: CpuLlc[]): string {
  const none = cpus.filter((c) => c.llc === null).map((c) => c.cpu);
  if (none.length === cpus.length)
    return `CPU caches as the kernel sees them: none (no ${SYS_CPU}/cpu0/cache: no cache topology was reported to the kernel), so no two CPUs share a last-level-cache scheduling domain and the kernel does not look for an idle CPU when a task wakes: the task runs on the CPU its wake-up chose (the waker's or its previous one), busy or not, until a load balance moves it.`;
  const groups = [...new Set(cpus.flatMap((c) => (c.llc ? [c.llc.sharedCpuList] : [])))];
  const level = Math.max(...cpus.flatMap((c) => (c.llc ? [c.llc.level] : [])));
  const shared = groups.some((g) => /[-,]/.test(g));
  return `CPU caches as the kernel sees them: last-level cache L${level} shared by CPUs ${groups.join(" | ")}${none.length ? ` (no cache information for CPU ${none.join(", ")})` : ""}; ${shared ? "when a task wakes, the kernel looks for an idle CPU among the CPUs that share its cache" : "no two CPUs share it, so the kernel does not look for an idle CPU when a task wakes: the task runs on the CPU its wake-up chose, busy or not, until a load balance moves it"}.`;
}
