// Root, real netns/cgroups/packets: agents inside each partition's network namespace report
// over UDP; the manager balances on their reports alone; directives reach their hooks.
import { describe, it } from "vitest";
import { DatagramReportSource } from "../../src/transport/datagram.ts";
import { checkAgentRun, hasV1, isRoot, runAgentScenario } from "./agent-harness.ts";

describe.skipIf(!isRoot || !hasV1)("weir agent over UDP (root, netns, cgroup v1)", () => {
  it("reports from inside each namespace, gets balanced, runs its hook with the allocation", async () => {
    const run = await runAgentScenario({
      prefix: `weirt${process.pid % 100000}u`,
      transport: "udp",
      // One socket on the host; each agent reaches it at its veth's host-side address.
      openSource: (keys) =>
        DatagramReportSource.open({ keys, bind: { address: "0.0.0.0", port: 0 } }),
      agentArgs: (_i, p, source) => [
        "--manager",
        `${p.hostAddr}:${(source as DatagramReportSource).address().port}`,
      ],
      transportConfig: { udp: { listen: "127.0.0.1:9471" } },
    });
    checkAgentRun(run);
  });
});
