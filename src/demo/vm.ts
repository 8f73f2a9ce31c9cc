// `weir demo --vm`: the demo on QEMU guests (src/vm). Two guests, each a partition with the
// testbed's packet server and `weir agent` inside (reporting through its own ivshmem region,
// the manager's slot page), plus a batch hog cgroup on the host that wants every CPU. The
// manager runs in this process with the qemu actuator: caps and weights on each QEMU's cgroup,
// and vCPUs hot-plugged/unplugged over QMP that the guest's agent onlines / the guest kernel
// offlines. Load moves from guest to guest (sent from inside each guest's network namespace,
// where its tap is). The summary gives per phase served ÷ offered, p99, each guest's vCPUs
// online and the time from a directive that added a vCPU to the guest's CPU online.
// Under TCG (this project's host family) a guest is ~18x slower than the host, and how much
// slower depends on the host's CPU and load: unless given, the rates are sized from what the
// guests themselves measure they serve per vCPU-second under a probe rate (vm-rates.ts), so
// the hot guest needs a second vCPU on any machine. Everything it made is removed at the end,
// also on Ctrl-C (vm-leftovers.ts lists what the kernel still shows).
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import pino from "pino";
import type { CycleRecord } from "../core/model.ts";
import { type Config, parseConfig } from "../manager/config.ts";
import { startManager } from "../service/run.ts";
import { testbedDown, testbedUp } from "../testbed/testbed.ts";
import { vmsDown } from "../vm/down.ts";
import { defaultVmStateFile } from "../vm/state.ts";
import { VM_MANAGER_INTERVAL_MS, vmsUp } from "../vm/vms.ts";
import { type DemoPlan, demoPlan, demoRate } from "./scenario.ts";
import { leftovers } from "./vm-leftovers.ts";
import { loadGuest } from "./vm-load.ts";
import { phaseOutcome } from "./vm-phase.ts";
import { type GuestLoad, guestLoad, sizeRates, VM_PROBE_MS, VM_PROBE_SKIP_MS } from "./vm-rates.ts";
import type { VmDemoSummary } from "./vm-summary.ts";
import { GuestVcpuWatch } from "./vm-vcpus.ts";

const PREFIX = "weirdemovm";
/**
 * The batch hog's testbed prefix: its own, since each testbed records (and removes) its
 * prefix's cgroup dir and would refuse one the other created.
 */
const HOG_PREFIX = "weirdemovmhog";
const SLOT_DIR = "/dev/shm/weirdemovm-slots";
const PORT = 7000;
/** The manager's log, kept after the demo. */
const logFile = "/run/weir/demo-vm-manager.log";
/** SHA-256 rounds per request in the guests' servers (Node in a TCG guest is ~18x slower). */
export const VM_DEMO_COST_ROUNDS = 20;
/**
 * cpu.shares of the guests' parent cgroup against its siblings — the hog's group (the kernel's
 * 1024) and everything else on the host — as the real-testbed benchmarks give their partitions'
 * group (bench/real-common.ts GROUP_CPU_SHARES; `weir bench vm-balance` too). The hog's idle
 * class yields only to its siblings inside its own group: at equal shares the two groups split
 * a contended host evenly, whatever the hog's entitlement.
 */
export const VM_DEMO_GROUP_CPU_SHARES = 16_384;

export interface VmDemoOptions {
  durationMs: number;
  guests: number;
  hog: boolean;
  /** Offered rates, packets/s; unless both are given they are sized from the guests' speed. */
  highPps?: number;
  lowPps?: number;
  signal: AbortSignal;
  say: (line: string) => void;
}

/** The config's partition entries of QEMU guests `<prefix>/<name>` (vmsUp's cgroups, QMP, console). */
export function guestPartitions(
  prefix: string,
  names: readonly string[],
  keysHex: readonly string[],
): Array<Record<string, unknown>> {
  const base = defaultVmStateFile(prefix).replace(/\.json$/, "");
  return names.map((name, i) => ({
    name,
    cgroup: `${prefix}/${name}`,
    actuator: "qemu",
    qemu: { qmp: `${base}.${name}.qmp`, console: `${base}.${name}.serial.log`, maxCpus: 2 },
    source: "agent",
    agent: { key: keysHex[i], index: i },
  }));
}

/**
 * The demo's manager config around `partitions` (each made `capped`, 400m guarantee,
 * importance 2) and the batch hog; a slot directory for guests' agents. `weir bench
 * vm-balance` runs cgroup partitions under the same config.
 */
export function vmDemoConfig(
  partitions: ReadonlyArray<Record<string, unknown>>,
  hogCgroup: string | null,
  slotDir: string | null,
): Config {
  return parseConfig({
    intervalMs: VM_MANAGER_INTERVAL_MS,
    capacity: { cpus: "auto", reserve: 0 },
    staleAfterMs: 10_000,
    retryGoneMs: 1000,
    onShutdown: "restore",
    api: { enabled: false },
    ...(slotDir ? { transport: { shm: { path: slotDir, slots: partitions.length } } } : {}),
    partitions: [
      ...partitions.map((p) => ({
        ...p,
        // capped: cap = entitlement, and the CPU count ceil(cap): a guest's vCPUs follow the
        // traffic. The guarantee keeps a guest (and its agent) running under TCG.
        capped: true,
        min: "400m",
        importance: 2,
      })),
      ...(hogCgroup ? [{ name: "hog", kind: "batch", cgroup: hogCgroup, importance: 5 }] : []),
    ],
  });
}

export async function runVmDemo(o: VmDemoOptions): Promise<VmDemoSummary> {
  const names = Array.from({ length: o.guests }, (_, i) => `g${i + 1}`);
  const notes: string[] = [];
  const keys = names.map(() => randomBytes(32).toString("hex"));
  const stateFile = defaultVmStateFile(PREFIX);
  mkdirSync("/run/weir", { recursive: true });
  const managerAc = new AbortController();
  const onAbort = () => managerAc.abort();
  o.signal.addEventListener("abort", onAbort);
  let running: Awaited<ReturnType<typeof startManager>> | null = null;
  let hogState: string | null = null;
  let hogCgroup = `${HOG_PREFIX}/hog`;
  let vmsState: string | null = null;
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
    const cfg = vmDemoConfig(
      guestPartitions(PREFIX, names, keys),
      o.hog ? hogCgroup : null,
      SLOT_DIR,
    );
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
      groupCpuShares: VM_DEMO_GROUP_CPU_SHARES,
      log: (l) => o.say(`  ${l}`),
    });
    vmsState = st.stateFile;
    notes.push(
      `the guests' parent cgroup at cpu.shares ${VM_DEMO_GROUP_CPU_SHARES}${o.hog ? " against the hog's group (1024: its idle class yields only inside its own group)" : ""} and the rest of the host, as in weir bench vm-balance`,
    );
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
    const t0 = Date.now();
    const watch = new GuestVcpuWatch(st.vms, records, t0);
    watch.start();
    const phases: VmDemoSummary["phases"] = [];
    let rates: VmDemoSummary["rates"] = {
      highPps: o.highPps ?? 0,
      lowPps: o.lowPps ?? 0,
      perVcpuPps: null,
      fixedCpuCores: null,
      probePps: [],
    };
    try {
      if (o.highPps === undefined || o.lowPps === undefined) {
        // Size the rates from the CPU the guests report at three probe rates (vm-rates.ts).
        const probe = async (pps: number): Promise<Array<GuestLoad | null>> => {
          o.say(`probe: ${pps} packets/s to every guest for ${VM_PROBE_MS / 1000} s ...`);
          const fromAt = Date.now();
          await Promise.all(st.vms.map((vm) => loadGuest(vm, PORT, pps, VM_PROBE_MS, o.signal)));
          const got = names.map((n) =>
            guestLoad(records, n, fromAt + VM_PROBE_SKIP_MS, Date.now()),
          );
          o.say(
            `  ${names.map((n, i) => `${n}: ${got[i] ? `${got[i].servedPps.toFixed(1)} served/s on ${(got[i].cpuCores * 1000).toFixed(0)}m` : "no report"}`).join(", ")}`,
          );
          if (o.signal.aborted)
            throw new Error("weir demo --vm: stopped by a signal during the probes");
          return got;
        };
        const sized = await sizeRates(probe);
        if (!sized)
          throw new Error(
            "weir demo --vm: the guests' reports during the probes gave no CPU cost per packet; give --high-pps and --low-pps",
          );
        rates = {
          highPps: o.highPps ?? sized.highPps,
          lowPps: o.lowPps ?? sized.lowPps,
          perVcpuPps: sized.perVcpuPps,
          fixedCpuCores: sized.fixedCpuCores,
          probePps: sized.probePps,
        };
        o.say(
          `  near the hot rate a guest uses ${(sized.fixedCpuCores * 1000).toFixed(0)}m fixed + 1 vCPU per ${sized.perVcpuPps.toFixed(0)} packets/s → ${rates.highPps} (hot) / ${rates.lowPps} packets/s`,
        );
      }
      const plan: DemoPlan = demoPlan(names, o.durationMs, rates.highPps, rates.lowPps);
      for (const ph of plan.phases) {
        if (o.signal.aborted) break;
        o.say(`phase "${ph.name}" (${((ph.toMs - ph.fromMs) / 1000).toFixed(0)} s)`);
        const fromMs = Date.now() - t0;
        const pps = st.vms.map((vm) => demoRate(plan, vm.name, ph.fromMs));
        const loads = await Promise.all(
          st.vms.map((vm, i) => loadGuest(vm, PORT, pps[i]!, ph.toMs - ph.fromMs, o.signal)),
        );
        phases.push(
          phaseOutcome({
            records,
            t0,
            name: ph.name,
            fromMs,
            toMs: Date.now() - t0,
            hot: ph.hot,
            partitions: st.vms.map((vm, i) => ({
              name: vm.name,
              offeredPps: pps[i]!,
              load: loads[i]?.targets[0] ?? null,
            })),
            vcpuSamples: watch.samples,
            batch: new Set(["hog"]),
          }),
        );
        if (loads.some((l) => l === null))
          notes.push(`phase "${ph.name}": a load generator failed`);
      }
    } finally {
      watch.stop();
    }
    if (o.signal.aborted) notes.push("stopped early by a signal: the last phases are partial");
    // each directive → online in the phase its directive was given in
    const directiveToOnline = [...watch.directiveToOnline, ...watch.notOnline()];
    for (const d of directiveToOnline)
      phases.find((ph) => d.atMs >= ph.fromMs && d.atMs < ph.toMs)?.directiveToOnline.push(d);
    summary = {
      mode: "vm",
      durationMs: Date.now() - t0,
      rates,
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
    left.push(...leftovers([PREFIX, HOG_PREFIX], PREFIX, [logFile]));
    if (summary) summary.teardown = { clean: left.length === 0, left };
  }
  if (!summary) throw new Error("weir demo --vm: no summary"); // unreachable: the body either returned one or threw
  return summary;
}
