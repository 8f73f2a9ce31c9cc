// vCPU hot-plug on a real QEMU guest (root, TCG here): the time from a directive for one more
// CPU (sent into the guest's ivshmem slot, and the vCPU plugged over QMP by GuestCpus, as the
// qemu actuator does) to the guest kernel's "CPU N online", and from an unplug to the guest
// kernel's "CPU N is now offline"; and how far apart the guest agent's reports arrive through
// its ivshmem region (the host scanning its slot every millisecond). One guest booted once,
// `--reps N` plug/unplug cycles (default 5; `--quick`: 2), median [min–max]. Tears down
// everything it made (vmsDown), also on failure.
import { rmSync } from "node:fs";
import { cappedDirective } from "../src/core/directive.ts";
import { KeyRing, parseKeyHex } from "../src/transport/codec.ts";
import { ShmReportSource } from "../src/transport/shm-source.ts";
import { vmsDown } from "../src/vm/down.ts";
import { LogTail } from "../src/vm/guest.ts";
import { GuestCpus } from "../src/vm/guest-cpus.ts";
import { QmpClient } from "../src/vm/qmp.ts";
import { vmsUp } from "../src/vm/vms.ts";
import {
  type BenchFigure,
  type Benchmark,
  fmtStats,
  isMain,
  runStandalone,
  stats,
} from "./harness.ts";
import { sleep } from "./real-common.ts";

const KEY_HEX = "7a".repeat(32);

async function until(fn: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

export const bench: Benchmark = {
  name: "vm-hotplug",
  description:
    "QEMU guest (TCG): directive -> guest CPU online, unplug -> offline, ivshmem report spacing",
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
    const onlineMs: number[] = [];
    const offlineMs: number[] = [];
    const gapsMs: number[] = [];
    try {
      ctx.progress(0, "booting the guest");
      const st = await vmsUp({
        prefix,
        vms: ["g1"],
        // a fresh slot per plug: one unplugged is never plugged again (QEMU 7.2 TCG aborts on it)
        maxCpus: reps + 1,
        memMiB: 512,
        maxLifetimeMs: 900_000,
        slotDir,
        keysHex: [KEY_HEX],
        agentIntervalMs: 200,
      });
      stateFile = st.stateFile;
      const vm = st.vms[0]!;
      qmp = await QmpClient.connect(vm.qmpSocket);
      const cpus = new GuestCpus({ qmp, tail: new LogTail(vm.serialLog), minCpus: 1, maxCpus: 2 });
      await until(() => source.latest().has("g1"), 240_000, "the guest's first report");
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
      for (let i = 0; i < reps; i++) {
        ctx.progress((i + 0.5) / reps, `plug/unplug ${i + 1}/${reps}`);
        const t0 = Date.now();
        source.sendDirective("g1", cappedDirective("g1", 2000, 200, 2));
        cpus.request(2);
        await until(() => cpus.status().applied === 2, 180_000, "guest CPU 1 online");
        onlineMs.push(cpus.status().appliedAtMs! - t0);
        await cpus.idle();
        const t1 = Date.now();
        cpus.request(1);
        await until(() => cpus.status().applied === 1, 180_000, "guest CPU 1 offline");
        offlineMs.push(cpus.status().appliedAtMs! - t1);
        source.sendDirective("g1", cappedDirective("g1", 1000, 100, 1));
        await cpus.idle();
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
        name: `${name} (median of ${s.n}; ${fmtStats(xs, 0)} ms)`,
        value: s.median,
        unit: "ms",
        reps: s.n,
        range: [s.min, s.max],
      };
    };
    return {
      name: "vm-hotplug",
      figures: [
        fig("directive + vCPU hot-plug -> guest kernel's CPU online", onlineMs),
        fig("vCPU unplug -> guest kernel's CPU offline", offlineMs),
        fig(
          "ivshmem: spacing of the guest agent's reports as the host sees them (agent every 200 ms)",
          gapsMs,
        ),
      ],
      notes: [
        "TCG guest (this host's /dev/kvm cannot boot a stock kernel): everything in the guest runs ~18x slower than on the host; KVM hosts are faster",
        "online: the directive written into the guest's slot and the vCPU plugged at the same moment; the agent in the guest onlines the CPU when it sees both (polling its slot every 50 ms and /sys for new CPUs)",
        "report spacing is not a one-way latency (the guest's clock is its own); it shows how regularly reports reach the host through the region",
      ],
    };
  },
};

if (isMain(import.meta.url)) await runStandalone(bench);
