// The probe of the packet server's cost that conservation-real, reaction-real and balance-bpf
// size their loads from.

import { runLoad } from "../src/testbed/load.ts";
import type { TestbedState } from "../src/testbed/state.ts";
import { readUsageNs } from "./harness.ts";
import { sleep } from "./real-common.ts";

/**
 * Partition a's server alone (hog stopped, no manager): CPU-ns per request at a light load,
 * then the requests per second it answers when offered more than one CPU's worth (its
 * single-threaded saturation rate, which is what the loads are sized from: the cost per
 * request falls as the rate rises, so the light-load cost alone would undersize "overload").
 */
export async function probeServer(
  tb: TestbedState,
  hogPid: number,
): Promise<{ costNs: number; saturationPps: number }> {
  const a = tb.partitions[0]!;
  const target = [{ name: a.name, addr: a.nsAddr, port: a.port }];
  process.kill(hogPid, "SIGSTOP");
  try {
    const u0 = readUsageNs(a.cgroupDirs);
    const light = await runLoad({
      targets: target,
      schedule: { kind: "constant", pps: 400 },
      durationMs: 2000,
      maxPackets: 1000,
    });
    await sleep(200);
    const used = readUsageNs(a.cgroupDirs) - u0;
    if (!(light.totals.answered > 100) || !(used > 0))
      throw new Error(
        `conservation-real: cost probe got ${light.totals.answered} replies and ${used} ns of CPU`,
      );
    const costNs = used / light.totals.answered;
    const offered = Math.round((1.6 * 1e9) / costNs);
    const heavy = await runLoad({
      targets: target,
      schedule: { kind: "constant", pps: offered },
      durationMs: 2500,
      maxPackets: Math.ceil(offered * 2.5) + 100,
      phases: [{ name: "full", fromMs: 500, toMs: 2500 }],
    });
    const full = heavy.targets[0]!.phases[0]!;
    const saturationPps = full.answered / ((full.toMs - full.fromMs) / 1000);
    if (!(saturationPps > 100))
      throw new Error(`conservation-real: saturation probe answered ${saturationPps}/s`);
    return { costNs, saturationPps };
  } finally {
    process.kill(hogPid, "SIGCONT");
  }
}
