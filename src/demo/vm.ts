// `weir demo --vm`: the demo on QEMU guests (src/vm). Two guests, each a partition with the
// testbed's packet server and `weir agent` inside (reporting through its own ivshmem region,
// the manager's slot page), plus a batch hog cgroup on the host that wants every CPU. The
// manager runs in this process with the qemu actuator: caps and weights on each QEMU's cgroup,
// and vCPUs hot-plugged/unplugged over QMP that the guest's agent onlines / the guest kernel
// offlines. Load moves from guest to guest (sent from inside each guest's network namespace,
// where its tap is). The summary gives per phase served ÷ offered, p99, each guest's vCPUs
// online and the time from a directive that added a vCPU to the guest's CPU online.
// Under TCG (this project's host family) a guest is ~18x slower than the host: the rates are
// low and the phases long. Everything it made is removed at the end, also on Ctrl-C.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import type { CycleRecord } from "../core/model.ts";
import { parseConfig } from "../manager/config.ts";
import { startManager } from "../service/run.ts";
import { testbedDown, testbedUp } from "../testbed/testbed.ts";
import { vmsDown } from "../vm/down.ts";
import { LogTail } from "../vm/guest.ts";
import { applyConsole } from "../vm/guest-cpus.ts";
import { defaultVmStateFile, type VmRecord } from "../vm/state.ts";
import { VM_MANAGER_INTERVAL_MS, vmsUp } from "../vm/vms.ts";
import { type DemoPlan, demoPlan, demoRate } from "./scenario.ts";

const PREFIX = "weirdemovm";
/**
 * The batch hog's testbed prefix: its own, since each testbed records (and removes) its
 * prefix's cgroup dir and would refuse one the other created.
 */
const HOG_PREFIX = "weirdemovmhog";
const SLOT_DIR = "/dev/shm/weirdemovm-slots";
const PORT = 7000;
/** SHA-256 rounds per request in the guests' servers (Node in a TCG guest is ~18x slower). */
export const VM_DEMO_COST_ROUNDS = 20;

export interface VmDemoOptions {
  durationMs: number;
  guests: number;
  hog: boolean;
  highPps: number;
  lowPps: number;
  signal: AbortSignal;
  say: (line: string) => void;
}

export interface VmPhaseGuest {
  partition: string;
  offered: number;
  served: number;
  servedRatio: number | null;
  p99Ms: number | null;
  /** vCPUs the guest kernel had online: mean of 1 s samples, and the most. */
  meanVcpus: number | null;
  maxVcpus: number | null;
  meanCapCpuMillis: number | null;
}

export interface VmDemoSummary {
  mode: "vm";
  durationMs: number;
  phases: Array<{ name: string; fromMs: number; toMs: number; guests: VmPhaseGuest[] }>;
  /** Each directive that raised a guest's vCPU count → its guest kernel's CPU online (ms). */
  directiveToOnlineMs: Array<{ partition: string; cpuCount: number; ms: number | null }>;
  teardown: { clean: boolean; left: string[] };
  notes: string[];
}

interface LoadOut {
  targets: Array<{
    name: string;
    sent: number;
    answered: number;
    servedRatio: number | null;
    latency: { p99Ms: number | null };
  }>;
}

/** One guest's load for one phase, sent from inside its namespace (`weir load --json`). */
function loadGuest(
  vm: VmRecord,
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
    execFile(
      "ip",
      [
        "netns",
        "exec",
        vm.netns,
        process.execPath,
        weirBin,
        "load",
        "--target",
        `${vm.name}=${vm.guestAddr}:${PORT}`,
        "--schedule",
        String(pps),
        "--duration",
        `${Math.round(durationMs)}ms`,
        "--max-packets",
        String(Math.ceil((pps * durationMs) / 1000) + 100),
        "--quiet",
        "--json",
      ],
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

const mean = (xs: number[]): number | null =>
  xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : null;

export async function runVmDemo(o: VmDemoOptions): Promise<VmDemoSummary> {
  const names = Array.from({ length: o.guests }, (_, i) => `g${i + 1}`);
  const plan: DemoPlan = demoPlan(names, o.durationMs, o.highPps, o.lowPps);
  const notes: string[] = [];
  const keys = names.map(() => randomBytes(32).toString("hex"));
  const stateFile = defaultVmStateFile(PREFIX);
  const base = stateFile.replace(/\.json$/, "");
  mkdirSync("/run/weir", { recursive: true });
  const managerAc = new AbortController();
  const onAbort = () => managerAc.abort();
  o.signal.addEventListener("abort", onAbort);
  let running: Awaited<ReturnType<typeof startManager>> | null = null;
  let hogState: string | null = null;
  let hogCgroup = `${HOG_PREFIX}/hog`;
  let vmsState: string | null = null;
  const directiveToOnline: VmDemoSummary["directiveToOnlineMs"] = [];
  let summary: VmDemoSummary | null = null;
  try {
    if (o.hog) {
      o.say("setting up a batch hog (cgroup + 2 busy threads) ...");
      const tb = await testbedUp({
        prefix: HOG_PREFIX,
        partitions: [],
        hogs: [{ name: "hog", cpus: 2 }],
        maxLifetimeMs: o.durationMs + 10 * 60_000,
        log: () => {},
      });
      hogState = tb.stateFile;
      hogCgroup = tb.hogs[0]?.cgroup ?? hogCgroup;
    }
    const cfg = parseConfig({
      intervalMs: VM_MANAGER_INTERVAL_MS,
      capacity: { cpus: "auto", reserve: 0 },
      staleAfterMs: 10_000,
      retryGoneMs: 1000,
      onShutdown: "restore",
      api: { enabled: false },
      transport: { shm: { path: SLOT_DIR, slots: names.length } },
      partitions: [
        ...names.map((name, i) => ({
          name,
          cgroup: `${PREFIX}/${name}`,
          actuator: "qemu",
          qemu: { qmp: `${base}.${name}.qmp`, console: `${base}.${name}.serial.log`, maxCpus: 2 },
          source: "agent",
          agent: { key: keys[i], index: i },
          // capped: cap = entitlement, and the CPU count ceil(cap): the vCPUs follow the traffic.
          // The guarantee keeps a guest (and its agent) running under TCG.
          capped: true,
          min: "400m",
          importance: 2,
        })),
        ...(o.hog ? [{ name: "hog", kind: "batch", cgroup: hogCgroup, importance: 5 }] : []),
      ],
    });
    const logFile = "/run/weir/demo-vm-manager.log";
    const logger = pino(
      { level: "info", base: undefined },
      pino.destination({ dest: logFile, sync: false, mkdir: true }),
    );
    running = await startManager({ cfg, logger, signal: managerAc.signal });
    o.say(`manager running (log: ${logFile}, kept)`);
    const records: CycleRecord[] = [];
    running.manager.subscribe((r) => {
      records.push(r);
      if (records.length > 20_000) records.splice(0, 5000);
    });
    o.say(`booting ${names.length} QEMU guests (TCG; kernel + initramfs from Debian packages) ...`);
    const st = await vmsUp({
      prefix: PREFIX,
      vms: names,
      // hot-plug slots to spare: one unplugged is never plugged again (QEMU 7.2 TCG aborts on it)
      maxCpus: 8,
      memMiB: 512,
      maxLifetimeMs: o.durationMs + 10 * 60_000,
      slotDir: SLOT_DIR,
      keysHex: keys,
      packetServer: { port: PORT, costRounds: VM_DEMO_COST_ROUNDS },
      log: (l) => o.say(`  ${l}`),
    });
    vmsState = st.stateFile;
    // Wait until every guest is managed from its own reports and its server answers.
    const readyBy = Date.now() + 240_000;
    for (;;) {
      const r = records.at(-1);
      if (r && names.every((n) => r.partitions.find((p) => p.id === n)?.throughput)) break;
      if (Date.now() > readyBy || o.signal.aborted) {
        notes.push("not every guest reported within 240 s; the phases ran anyway");
        break;
      }
      await new Promise((res) => setTimeout(res, 500));
    }
    o.say("guests managed from their own reports; load starts");

    // vCPUs online per guest, from each guest kernel's console; and directive → online times.
    const tails = new Map(
      st.vms.map((vm) => [vm.name, new LogTail(vm.serialLog, { keepText: false })]),
    );
    const online = new Map(st.vms.map((vm) => [vm.name, new Set([0])]));
    const partial = new Map(st.vms.map((vm) => [vm.name, ""]));
    const waiting = new Map<string, { atMs: number; cpuCount: number }>();
    const samples: Array<{ tMs: number; vcpus: Record<string, number> }> = [];
    let seen = records.length;
    const t0 = Date.now();
    const poll = setInterval(() => {
      const now = Date.now();
      for (const r of records.slice(seen)) {
        for (const p of r.partitions) {
          if (!p.written.includes("vcpus") || !p.directive) continue;
          const before = online.get(p.id)?.size ?? 1;
          if (p.directive.cpuCount > before)
            waiting.set(p.id, { atMs: r.startedAtMs, cpuCount: p.directive.cpuCount });
        }
      }
      seen = records.length;
      for (const [name, tail] of tails) {
        const text = partial.get(name)! + tail.read();
        const end = text.lastIndexOf("\n") + 1;
        partial.set(name, text.slice(end));
        const next = applyConsole(online.get(name)!, text.slice(0, end));
        const w = waiting.get(name);
        if (w && next.size >= w.cpuCount) {
          directiveToOnline.push({ partition: name, cpuCount: w.cpuCount, ms: now - w.atMs });
          waiting.delete(name);
        }
        online.set(name, next);
      }
    }, 100);
    const sampler = setInterval(() => {
      samples.push({
        tMs: Date.now() - t0,
        vcpus: Object.fromEntries([...online].map(([n, s]) => [n, s.size])),
      });
    }, 1000);
    const phases: VmDemoSummary["phases"] = [];
    try {
      for (const ph of plan.phases) {
        if (o.signal.aborted) break;
        o.say(`phase "${ph.name}" (${((ph.toMs - ph.fromMs) / 1000).toFixed(0)} s)`);
        const fromMs = Date.now() - t0;
        const loads = await Promise.all(
          st.vms.map((vm) =>
            loadGuest(vm, demoRate(plan, vm.name, ph.fromMs), ph.toMs - ph.fromMs, o.signal),
          ),
        );
        const toMs = Date.now() - t0;
        const caps = records.filter(
          (r) => r.startedAtMs - t0 >= fromMs && r.startedAtMs - t0 < toMs,
        );
        phases.push({
          name: ph.name,
          fromMs,
          toMs,
          guests: st.vms.map((vm, i) => {
            const t = loads[i]?.targets[0];
            const inPhase = samples.filter((s) => s.tMs >= fromMs && s.tMs < toMs);
            const v = inPhase.map((s) => s.vcpus[vm.name] ?? 1);
            const capOf = caps.flatMap((r) => {
              const c = r.partitions.find((p) => p.id === vm.name)?.directive?.capCpuMillis;
              return c !== undefined && Number.isFinite(c) ? [c] : [];
            });
            const m = mean(capOf);
            return {
              partition: vm.name,
              offered: t?.sent ?? 0,
              served: t?.answered ?? 0,
              servedRatio: t?.servedRatio ?? null,
              p99Ms: t?.latency.p99Ms ?? null,
              meanVcpus: mean(v),
              maxVcpus: v.length ? Math.max(...v) : null,
              meanCapCpuMillis: m === null ? null : Math.round(m),
            };
          }),
        });
        if (loads.some((l) => l === null))
          notes.push(`phase "${ph.name}": a load generator failed`);
      }
    } finally {
      clearInterval(poll);
      clearInterval(sampler);
    }
    if (o.signal.aborted) notes.push("stopped early by a signal: the last phases are partial");
    summary = {
      mode: "vm",
      durationMs: Date.now() - t0,
      phases,
      directiveToOnlineMs: directiveToOnline,
      teardown: { clean: false, left: [] },
      notes,
    };
  } finally {
    o.signal.removeEventListener("abort", onAbort);
    managerAc.abort();
    await running?.done.catch(() => {});
    const left: string[] = [];
    const vd = await vmsDown(vmsState ?? stateFile).catch((e: Error) => ({
      clean: false,
      failed: [{ what: "vms", error: e.message }],
    }));
    for (const f of vd.failed) left.push(`${f.what}: ${f.error}`);
    if (hogState) {
      const td = await testbedDown(hogState);
      for (const f of td.failed) left.push(`${f.what}: ${f.error}`);
    }
    rmSync(SLOT_DIR, { recursive: true, force: true });
    // What the kernel lists: no QEMU, namespace or cgroup of the prefix left.
    left.push(...leftovers());
    if (summary) summary.teardown = { clean: left.length === 0, left };
  }
  if (!summary) throw new Error("weir demo --vm: no summary"); // unreachable: the body either returned one or threw
  return summary;
}

/** Anything of the demo's prefixes the kernel still lists (processes, namespaces, cgroups). */
function leftovers(): string[] {
  const out: string[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, "utf8");
      if (
        [PREFIX, HOG_PREFIX].some(
          (p) => argv.includes(`weir:${p}/`) || argv.includes(`--weir-tag=${p}/`),
        )
      )
        out.push(`process ${e}`);
    } catch {
      // exited meanwhile
    }
  }
  try {
    for (const ns of readdirSync("/run/netns"))
      if (ns.startsWith(`${PREFIX}-`)) out.push(`netns ${ns}`);
  } catch {
    // no namespaces at all
  }
  for (const root of [
    "/sys/fs/cgroup/cpu",
    "/sys/fs/cgroup/cpuacct",
    "/sys/fs/cgroup/unified",
    "/sys/fs/cgroup",
  ])
    for (const p of [PREFIX, HOG_PREFIX])
      if (existsSync(join(root, p))) out.push(`cgroup ${join(root, p)}`);
  return out;
}

const pct = (f: number | null) => (f === null ? "n/a" : `${(f * 100).toFixed(1)} %`);
const num = (x: number | null, d = 1) => (x === null ? "n/a" : x.toFixed(d));

export function formatVmSummary(s: VmDemoSummary): string {
  const lines = [
    `weir demo --vm: ${s.phases.length} phases in ${(s.durationMs / 1000).toFixed(0)} s`,
  ];
  for (const ph of s.phases) {
    lines.push(`\n${ph.name} (${((ph.toMs - ph.fromMs) / 1000).toFixed(0)} s)`);
    lines.push("  guest  offered  served  served/offered  p99 ms  vCPUs mean/max  cap (mean)");
    for (const g of ph.guests)
      lines.push(
        `  ${g.partition.padEnd(5)}  ${String(g.offered).padStart(7)}  ${String(g.served).padStart(6)}  ${pct(g.servedRatio).padStart(14)}  ${num(g.p99Ms).padStart(6)}  ${`${num(g.meanVcpus, 2)}/${g.maxVcpus ?? "n/a"}`.padStart(14)}  ${g.meanCapCpuMillis === null ? "none" : `${g.meanCapCpuMillis}m`}`,
      );
  }
  const ms = s.directiveToOnlineMs
    .flatMap((d) => (d.ms === null ? [] : [d.ms]))
    .sort((a, b) => a - b);
  lines.push(
    `\ndirective → guest CPU online: ${ms.length ? `${ms.length} times, median ${ms[Math.floor(ms.length / 2)]} ms, range ${ms[0]}–${ms.at(-1)} ms` : "no vCPU was added"}`,
  );
  lines.push(s.teardown.clean ? "teardown: clean" : `teardown: LEFT ${s.teardown.left.join("; ")}`);
  for (const n of s.notes) lines.push(`note: ${n}`);
  return `${lines.join("\n")}\n`;
}
