// vCPU hot-plug on a real QEMU guest (root, TCG here). One guest booted once, `--reps N`
// (default 5; `--quick`: 2), median [min–max] of each:
// - hot-plug: a directive for one more CPU (sent into the guest's ivshmem slot) and a vCPU
//   plugged over QMP by GuestCpus at the same moment, as the qemu actuator does → the guest
//   kernel's "CPU N online" (its agent onlined it). Each repetition plugs a fresh vCPU; none
//   is unplugged (QEMU 7.2 under TCG aborts on a plug after an unplug, src/vm/guest-cpus.ts);
// - offline: a directive for one CPU fewer → the guest kernel's "CPU N is now offline" (its
//   agent offlined it; the vCPU stays plugged), one CPU a repetition back down to one;
// - online again: a directive for one more → that plugged, offline vCPU online;
// - how far apart the guest agent's reports arrive through its ivshmem region (the host
//   scanning its slot every millisecond for 10 s).
// Tears down everything it made (vmsDown), also on failure.
import { readFileSync, rmSync } from "node:fs";
import { cappedDirective } from "../src/core/directive.ts";
import { isAlive } from "../src/testbed/procs.ts";
import { KeyRing, parseKeyHex } from "../src/transport/codec.ts";
import { ShmReportSource } from "../src/transport/shm-source.ts";
import { vmsDown } from "../src/vm/down.ts";
import { LogTail } from "../src/vm/guest.ts";
import { GuestCpus } from "../src/vm/guest-cpus.ts";
import { QmpClient } from "../src/vm/qmp.ts";
import { vmsUp } from "../src/vm/vms.ts";
import { type BenchFigure, type Benchmark, isMain, runStandalone, stats } from "./harness.ts";
import { sleep } from "./real-common.ts";

const KEY_HEX = "7a".repeat(32);

async function until(
  fn: () => boolean,
  timeoutMs: number,
  what: string,
  alive: () => string | null,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    const dead = alive();
    if (dead !== null) throw new Error(`${what}: QEMU exited (${dead})`);
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

export const bench: Benchmark = {
  name: "vm-hotplug",
  description:
    "QEMU guest (TCG): directive + hot-plug -> guest CPU online, directive -> offline / online again, ivshmem report spacing",
  async run(ctx) {
    const reps = ctx.reps ?? (ctx.quick ? 2 : 5);
    const prefix = `weirb${process.pid % 100000}`;
    const slotDir = `/dev/shm/weirb-${process.pid}-vmslots`;
    const source = new ShmReportSource({
      path: slotDir,
      keys: new KeyRing([{ index: 0, id: "g1", key: parseKeyHex(KEY_HEX) }]),
      maxAgeMs: 30_000,
      maxFutureMs: 30_000,
    });
    let stateFile: string | null = null;
    let qmp: QmpClient | null = null;
    const plugMs: number[] = [];
    const offlineMs: number[] = [];
    const onlineMs: number[] = [];
    const gapsMs: number[] = [];
    try {
      ctx.progress(0, "booting the guest");
      const st = await vmsUp({
        prefix,
        vms: ["g1"],
        // a fresh slot for each plug: none is unplugged
        maxCpus: reps + 1,
        memMiB: 512,
        maxLifetimeMs: 900_000,
        slotDir,
        keysHex: [KEY_HEX],
        agentIntervalMs: 200,
      });
      stateFile = st.stateFile;
      const vm = st.vms[0]!;
      const alive = () =>
        isAlive(vm.qemuPid!) ? null : readFileSync(vm.qemuLog, "utf8").slice(-500).trim();
      qmp = await QmpClient.connect(vm.qmpSocket);
      const cpus = new GuestCpus({
        qmp,
        tail: new LogTail(vm.serialLog),
        minCpus: 1,
        maxCpus: reps + 1,
      });
      await until(() => source.latest().has("g1"), 240_000, "the guest's first report", alive);
      // Report spacing: the host polls its slot every ms for 10 s and notes each new report.
      let seq = source.latest().get("g1")!.sequence;
      const end = Date.now() + 10_000;
      let lastAt = Date.now();
      let first = true;
      while (Date.now() < end) {
        const r = source.latest().get("g1");
        if (r && r.sequence !== seq) {
          const now = Date.now();
          if (!first) gapsMs.push(now - lastAt);
          first = false;
          lastAt = now;
          seq = r.sequence;
        }
        await sleep(1);
      }
      // One directive and GuestCpus request for n CPUs; the time until the guest runs n.
      const step = async (n: number, what: string): Promise<number> => {
        const t0 = Date.now();
        source.sendDirective("g1", cappedDirective("g1", n * 1000, 100 * n, n));
        cpus.request(n);
        await until(() => cpus.status().applied === n, 180_000, what, alive);
        const ms = cpus.status().appliedAtMs! - t0;
        await cpus.idle();
        return ms;
      };
      for (let i = 1; i <= reps; i++) {
        ctx.progress((i - 0.5) / (3 * reps), `hot-plug ${i}/${reps}`);
        plugMs.push(await step(i + 1, `guest CPU ${i} online after its hot-plug`));
      }
      for (let i = reps; i >= 1; i--) {
        ctx.progress((2 * reps - i + 0.5) / (3 * reps), `offline ${reps - i + 1}/${reps}`);
        offlineMs.push(await step(i, `guest CPU ${i} offline`));
      }
      for (let i = 1; i <= reps; i++) {
        ctx.progress((2 * reps + i - 0.5) / (3 * reps), `online again ${i}/${reps}`);
        onlineMs.push(await step(i + 1, `guest CPU ${i} online again`));
      }
    } finally {
      qmp?.close();
      source.close();
      if (stateFile) await vmsDown(stateFile);
      rmSync(slotDir, { recursive: true, force: true });
    }
    ctx.progress(1, "done");
    const fig = (name: string, xs: number[]): BenchFigure => {
      const s = stats(xs) ?? { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
      return {
        name,
        value: Math.round(s.median),
        unit: "ms",
        reps: s.n,
        range: [Math.round(s.min), Math.round(s.max)],
      };
    };
    return {
      name: "vm-hotplug",
      figures: [
        fig("directive + vCPU hot-plug -> guest kernel's CPU online", plugMs),
        fig("directive for one CPU fewer -> guest kernel's CPU offline", offlineMs),
        fig("directive for one CPU more (vCPU plugged, offline) -> CPU online", onlineMs),
        fig(
          "ivshmem: spacing of the guest agent's reports as the host sees them (agent every 200 ms)",
          gapsMs,
        ),
      ],
      notes: [
        "TCG guest (this host's /dev/kvm cannot boot a stock kernel): everything in the guest runs ~18x slower than on the host; KVM hosts are faster",
        "hot-plug: the directive written into the guest's slot and the vCPU plugged at the same moment; the agent in the guest onlines the CPU when it sees both (polling its slot every 50 ms and /sys for new CPUs at each 200 ms report); each repetition plugs a fresh vCPU (none is unplugged: QEMU 7.2 under TCG aborts on a plug after an unplug)",
        "offline / online again: only the directive; the agent offlines or onlines a plugged vCPU, the guest kernel's console line ends the measurement",
        "report spacing is not a one-way latency (the guest's clock is its own); it shows how regularly reports reach the host through the region",
      ],
    };
  },
};

if (isMain(import.meta.url)) await runStandalone(bench);
