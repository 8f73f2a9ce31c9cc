// The same balance scenario on VM partitions and on cgroup partitions, side by side (root).
// Two partitions, p1 and p2, and a batch hog (2 busy threads in a cgroup of its own testbed);
// traffic moves between them in phases — p1 hot (the other low), then p2 hot — repeated
// `--reps` times (default 5; `--quick`: 1, shorter phases), the manager running throughout.
// Both kinds run under the same manager config (`weir demo --vm`'s: 1 s cycles, every
// partition `capped` with a 400m guarantee at importance 2, the hog batch at importance 5,
// capacity = the host's CPUs), the partitions' parent cgroup at cpu.shares
// VM_DEMO_GROUP_CPU_SHARES (the demo's, the other real-testbed benchmarks' GROUP_CPU_SHARES)
// against the hog's group at the kernel's 1024, whose idle class holds only inside it, and the
// same load generator (`weir load`, one process per partition and phase):
// - cgroups: the testbed's netns + veth partitions, counted on their veth, each packet server
//   two worker processes on one socket (so one partition can use more than one CPU);
// - VMs: two QEMU guests (one boot for every repetition), each its server and `weir agent`
//   inside, reporting through its ivshmem slot; caps and weights on QEMU's cgroup, vCPUs
//   hot-plugged that the guest onlines (the qemu actuator).
// Same shape, rates scaled to each kind's measured capacity: before its repetitions each kind
// runs the demo's three probes (src/demo/vm-rates.ts sizeRates) on its own partitions, fits
// CPU = fixed + cost × served from the manager's own records, and sizes hot as the rate that
// needs 1.25 CPUs (vCPUs for guests), low as 0.1 of one beyond the fixed part. Under TCG a
// guest is ~18× slower, so its rates are far lower; the guests' servers burn fewer rounds.
// The cgroup side runs first (no guest exists yet), then the guests boot; the hog is shared.
// Everything is created under prefixes with this process's pid and removed at the end, also on
// failure; the managers' logs stay in $TMPDIR (weir-vm-balance-<kind>.log).
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import {
  guestPartitions,
  VM_DEMO_COST_ROUNDS,
  VM_DEMO_GROUP_CPU_SHARES,
  vmDemoConfig,
} from "../src/demo/vm.ts";
import { leftovers } from "../src/demo/vm-leftovers.ts";
import {
  type SizedRates,
  VM_HOT_VCPUS,
  VM_LOW_VCPUS,
  VM_PROBE_MS,
  VM_PROBE_PPS,
} from "../src/demo/vm-rates.ts";
import { GuestVcpuWatch } from "../src/demo/vm-vcpus.ts";
import { testbedDown, testbedUp } from "../src/testbed/testbed.ts";
import { vmsDown } from "../src/vm/down.ts";
import { defaultVmStateFile } from "../src/vm/state.ts";
import { vmsUp } from "../src/vm/vms.ts";
import type { BenchFigure, Benchmark } from "./harness.ts";
import { isMain, realBenchReps, repeated, runStandalone } from "./harness.ts";
import { loadAvg } from "./real-common.ts";
import { type KindResult, managerOf, NAMES, runKind } from "./vm-balance-run.ts";
import {
  KIND_LABEL,
  KINDS,
  type Kind,
  phaseFigures,
  SIDE_BY_SIDE_COLUMNS,
  sideBySideRows,
} from "./vm-balance-summary.ts";

/** The cgroup side's servers: the testbed's default cost, two worker processes each. */
const CGROUP_COST_ROUNDS = 600;
const CGROUP_SERVER_WORKERS = 2;
/** The cgroup side's first probe: a rate one thread of the host serves on a few % of a CPU. */
const CGROUP_PROBE_PPS = 60;
const VM_PORT = 7000;
const sizingNote = (kind: Kind, s: SizedRates, cost: string) =>
  `${KIND_LABEL[kind]}: probes at ${s.probePps.join(", ")} packets/s (${VM_PROBE_MS / 1000} s each) → CPU ${(s.fixedCpuCores * 1000).toFixed(0)}m fixed + 1 CPU per ${s.perVcpuPps.toFixed(0)} packets/s served; hot ${s.highPps} packets/s (needs ${VM_HOT_VCPUS} CPUs by that fit), low ${s.lowPps} (${VM_LOW_VCPUS} of a CPU beyond the fixed part); ${cost}.`;

export const bench: Benchmark = {
  name: "vm-balance",
  description:
    "the same moving-traffic scenario (2 partitions + a batch hog, p1 hot then p2 hot) on cgroup partitions and on QEMU guests with vCPU hot-plug: served ÷ offered, follow time, p99, CPUs/vCPUs given, hog CPU (root, QEMU)",
  async run(ctx) {
    const reps = realBenchReps("vm-balance", ctx);
    const phaseMs = ctx.quick ? 16_000 : 24_000;
    const load0 = loadAvg();
    const base = `wvb${process.pid % 100000}`;
    const hogPrefix = `${base}h`;
    const cgPrefix = `${base}c`;
    const vmPrefix = `${base}v`;
    const slotDir = `/dev/shm/${base}-slots`;
    const lifetimeMs = 2 * reps * 2 * phaseMs + 30 * 60_000;
    const ac = new AbortController();
    const states: { hog?: string; cg?: string; vm?: string } = {};
    let stopManager: (() => Promise<void>) | null = null;
    const results: Partial<Record<Kind, KindResult>> = {};
    const left: string[] = [];
    mkdirSync("/run/weir", { recursive: true });
    try {
      ctx.progress(0, "hog and cgroup partitions");
      const hogTb = await testbedUp({
        prefix: hogPrefix,
        partitions: [],
        hogs: [{ name: "hog", cpus: 2 }],
        maxLifetimeMs: lifetimeMs,
        log: () => {},
      });
      states.hog = hogTb.stateFile;
      const hogCgroup = hogTb.hogs[0]!.cgroup;
      const cgTb = await testbedUp({
        prefix: cgPrefix,
        partitions: NAMES.map((name) => ({ name })),
        costRounds: CGROUP_COST_ROUNDS,
        serverWorkers: CGROUP_SERVER_WORKERS,
        groupCpuShares: VM_DEMO_GROUP_CPU_SHARES,
        maxLifetimeMs: lifetimeMs,
        log: () => {},
      });
      states.cg = cgTb.stateFile;
      // cgroups: counted on the host veth (offered tx, served rx) and the server's namespace
      const cg = await managerOf(
        vmDemoConfig(
          cgTb.partitions.map((p) => ({
            name: p.name,
            cgroup: p.cgroup,
            interfaces: [{ name: p.hostIf, offered: "tx", served: "rx" }],
            ...(p.serverPid ? { pid: p.serverPid } : {}),
          })),
          hogCgroup,
          null,
        ),
        "cgroup",
      );
      stopManager = cg.stop;
      results.cgroup = await runKind(ctx, {
        kind: "cgroup",
        dests: cgTb.partitions.map((p) => ({
          netns: null,
          name: p.name,
          addr: p.nsAddr,
          port: p.port,
        })),
        records: cg.records,
        firstProbePps: CGROUP_PROBE_PPS,
        watch: null,
        t0: Date.now(),
        reps,
        phaseMs,
        progressFrom: 0,
        signal: ac.signal,
      });
      await cg.stop();
      stopManager = null;

      // guests: the manager first (it publishes the slots the guests' regions are), then QEMU
      ctx.progress(0.5, "booting the guests");
      const keys = NAMES.map(() => randomBytes(32).toString("hex"));
      const vm = await managerOf(
        vmDemoConfig(guestPartitions(vmPrefix, NAMES, keys), hogCgroup, slotDir),
        "vm",
      );
      stopManager = vm.stop;
      states.vm = defaultVmStateFile(vmPrefix);
      const st = await vmsUp({
        prefix: vmPrefix,
        vms: NAMES,
        maxCpus: 8,
        memMiB: 512,
        maxLifetimeMs: lifetimeMs,
        slotDir,
        keysHex: keys,
        packetServer: { port: VM_PORT, costRounds: VM_DEMO_COST_ROUNDS },
        groupCpuShares: VM_DEMO_GROUP_CPU_SHARES,
      });
      states.vm = st.stateFile;
      const t0 = Date.now();
      const watch = new GuestVcpuWatch(st.vms, vm.records, t0);
      watch.start();
      try {
        results.vm = await runKind(ctx, {
          kind: "vm",
          dests: st.vms.map((g) => ({
            netns: g.netns,
            name: g.name,
            addr: g.guestAddr,
            port: VM_PORT,
          })),
          records: vm.records,
          firstProbePps: VM_PROBE_PPS,
          watch,
          t0,
          reps,
          phaseMs,
          progressFrom: 0.5,
          signal: ac.signal,
        });
      } finally {
        watch.stop();
      }
    } finally {
      ac.abort();
      await stopManager?.().catch(() => {});
      if (states.vm) {
        const vd = await vmsDown(states.vm).catch((e: Error) => ({
          failed: [{ what: "vms", error: e.message }],
        }));
        for (const f of vd.failed) left.push(`${f.what}: ${f.error}`);
      }
      for (const s of [states.cg, states.hog]) {
        if (!s) continue;
        const td = await testbedDown(s);
        for (const f of td.failed) left.push(`${f.what}: ${f.error}`);
      }
      rmSync(slotDir, { recursive: true, force: true });
      if (existsSync(slotDir)) left.push(`directory ${slotDir}`);
      for (const p of [hogPrefix, cgPrefix, vmPrefix]) left.push(...leftovers([p], p));
    }
    const figs = KINDS.flatMap((k) => phaseFigures(k, results[k]!.reps));
    const pooled = (k: Kind, pick: (f: (typeof figs)[number]) => number[]) =>
      figs.filter((f) => f.kind === k).flatMap(pick);
    const figures: BenchFigure[] = KINDS.flatMap((k) => [
      {
        name: `${KIND_LABEL[k]}: hot partition served ÷ offered (both phases, every repetition)`,
        unit: "%",
        ...repeated(
          pooled(k, (f) => f.hotServed),
          1,
          100,
        ),
      },
      {
        name: `${KIND_LABEL[k]}: weir's follow time, phase start → the hot partition's entitlement 90 % of the way (of the phases that got there: ${pooled(k, (f) => f.followMs).filter(Number.isFinite).length} of ${pooled(k, (f) => f.followMs).length})`,
        unit: "ms",
        ...repeated(
          pooled(k, (f) => f.followMs),
          0,
        ),
      },
      {
        name: `${KIND_LABEL[k]}: hot partition's p99`,
        unit: "ms",
        ...repeated(
          pooled(k, (f) => f.hotP99Ms),
          1,
        ),
      },
    ]);
    const perRep = KINDS.flatMap((k) =>
      results[k]!.reps.flatMap((rep, i) =>
        rep.map(({ hot, phase }) => {
          const h = phase.guests.find((g) => g.partition === hot);
          return [
            i + 1,
            k,
            phase.name,
            h ? `${h.offeredPps}` : "–",
            h?.servedRatio == null ? "–" : (h.servedRatio * 100).toFixed(1),
            phase.followMs ?? "not reached",
            h?.p99Ms == null ? "–" : h.p99Ms.toFixed(1),
            h?.meanCapCpuMillis ?? "–",
            h?.meanVcpus == null ? "–" : `${h.meanVcpus.toFixed(2)}/${h.maxVcpus}`,
            phase.hogCpuMillis ?? "–",
          ];
        }),
      ),
    );
    return {
      name: "vm-balance",
      figures,
      tables: [
        {
          title: `side by side: median [min–max] over ${reps} repetitions of each phase (${phaseMs / 1000} s each)`,
          columns: SIDE_BY_SIDE_COLUMNS,
          rows: sideBySideRows(figs),
        },
        {
          title: "per repetition and phase (in the order run)",
          columns: [
            "repetition",
            "partitions",
            "phase",
            "hot rate /s",
            "hot served %",
            "follow (ms)",
            "hot p99 ms",
            "hot's cap (m)",
            "hot's vCPUs mean/max",
            "hog CPU (m)",
          ],
          rows: perRep,
        },
      ],
      notes: [
        "Same shape, rates scaled to each kind's measured capacity: each kind's own three probes through the same fit (CPU = fixed + cost × served, from the manager's records: the cgroup's CPU for cgroups, the guest's own /proc/stat in its agent's reports for guests).",
        sizingNote(
          "cgroup",
          results.cgroup!.sized,
          `${CGROUP_COST_ROUNDS} SHA-256 rounds a request, ${CGROUP_SERVER_WORKERS} server processes on one socket`,
        ),
        sizingNote(
          "vm",
          results.vm!.sized,
          `${VM_DEMO_COST_ROUNDS} rounds a request (a TCG guest runs Node ~18x slower), one server process, its agent beside it; a KVM host runs the same guests faster`,
        ),
        `Same for both: 1 s manager cycles, partitions capped (cap = entitlement; a guest's vCPU count = ceil of its cap, at most 2) with a 400m guarantee at importance 2, the 2-thread hog batch at importance 5 in a testbed of its own, the partitions' parent cgroup (the testbed's, the guests') at cpu.shares ${VM_DEMO_GROUP_CPU_SHARES} against everything else on the host as in the other real-testbed benchmarks and \`weir demo --vm\` (the hog's parent at the default 1024: its idle class holds only among its siblings), capacity = the host's CPUs with no reserve; loads sent by \`weir load\` (one process per partition and phase, from the host's namespace to a cgroup partition's veth, from a guest's namespace to its tap). The cgroup repetitions ran first, then the guests' (one boot).`,
        "Follow time: from the phase start until the hot partition's entitlement got 90 % of the way from where it was to where it settled (mean of the phase's last quarter); 'not reached' when it did not within the phase or moved less than 50m. The other partition's figures: both low-rate partitions' answered ÷ sent, their worst p99.",
        "What bounds the follow time: the two partitions' demands claim the whole capacity (the hot one's traffic needs more than capacity minus the other's share), so the hot partition gets what the other releases, and the other's entitlement falls only as its smoothed demand does: 0.2 of the gap a cycle (policy.smoothingDown), at most 10 % of what it needed a cycle (policy.maxShrinkPerCycle). Both are per cycle, set for 100 ms cycles; at these 1 s cycles the release takes about 9 cycles. The policy alone, on an idealised switch with this config (src/demo/vm.test.ts: 1,600m / 400m to 400m / 1,600m, instant load, no noise), crosses 90 % in the 9th cycle: 9,000 ms. Shorter when the partition that was hot ended its phase uncongested (its smoothed demand near its use + 20 %, not its traffic's unmet need, capped at max 2,000m); the figure also counts the load generator's start (the phase clock starts before `weir load` is spawned); vCPU hot-plug does not enter (the figure is the entitlement; cgroups have no vCPUs).",
        `Load average (1, 5, 15 min): ${load0} at the start, ${loadAvg()} at the end (2 CPUs, shared with other work).`,
        ...KINDS.flatMap((k) => results[k]!.notes),
        left.length === 0
          ? "Teardown: nothing left (processes, namespaces, links, cgroups, /dev/shm and /run/weir files of its prefixes)."
          : `Teardown LEFT: ${left.join("; ")}`,
      ],
    };
  },
};

if (isMain(import.meta.url)) await runStandalone(bench);
