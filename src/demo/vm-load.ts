// `weir demo --vm`'s load: one guest's rate for one phase, sent from inside the guest's network
// namespace (where its tap is) by `weir load --json`, bounded in packets and time. `weir bench
// vm-balance` sends a cgroup partition's the same way from the host's namespace (its veth).
import { execFile } from "node:child_process";
import { join } from "node:path";
import type { VmRecord } from "../vm/state.ts";

export interface LoadOut {
  targets: Array<{
    name: string;
    sent: number;
    answered: number;
    servedRatio: number | null;
    latency: { p99Ms: number | null };
  }>;
}

/** One guest's load for one phase, sent from inside its namespace (`weir load --json`). */
export function loadGuest(
  vm: VmRecord,
  port: number,
  pps: number,
  durationMs: number,
  signal: AbortSignal,
): Promise<LoadOut | null> {
  const to = { netns: vm.netns, name: vm.name, addr: vm.guestAddr, port };
  return loadTarget(to, pps, durationMs, signal);
}

/** Where a load goes: a partition's server, sent from `netns` (null: this process's namespace). */
export interface LoadDestination {
  netns: string | null;
  name: string;
  addr: string;
  port: number;
}

/** `pps` for `durationMs` to one server by `weir load --json`; null when the generator failed. */
export function loadTarget(
  to: LoadDestination,
  pps: number,
  durationMs: number,
  signal: AbortSignal,
): Promise<LoadOut | null> {
  // bin/weir.js of this package, from src/demo or dist/src/demo
  const weirBin = join(import.meta.dirname, "..", "..", "bin", "weir.js").replace(
    /\/dist\/bin\//,
    "/bin/",
  );
  return new Promise((resolve) => {
    const argv = [
      process.execPath,
      weirBin,
      "load",
      "--target",
      `${to.name}=${to.addr}:${to.port}`,
      "--schedule",
      String(pps),
      "--duration",
      `${Math.round(durationMs)}ms`,
      "--max-packets",
      String(Math.ceil((pps * durationMs) / 1000) + 100),
      "--quiet",
      "--json",
    ];
    execFile(
      to.netns === null ? argv[0]! : "ip",
      to.netns === null ? argv.slice(1) : ["netns", "exec", to.netns, ...argv],
      { signal, timeout: durationMs + 30_000, maxBuffer: 16 << 20 },
      (err, stdout) => {
        if (err) return resolve(null);
        try {
          resolve(JSON.parse(stdout) as LoadOut);
        } catch {
          resolve(null);
        }
      },
    );
  });
}
