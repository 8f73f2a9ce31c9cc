// Root, real netns/cgroups/packets: agents inside each partition's network namespace report
// through their own shared-memory slots; the manager balances on those reports alone;
// directives written into the slots reach the agents' hooks.
import { rmSync } from "node:fs";
import { afterAll, describe, it } from "vitest";
import { ShmReportSource } from "../../src/transport/shm-source.ts";
import { checkAgentRun, hasV1, isRoot, runAgentScenario } from "./agent-harness.ts";

const TABLE = `/dev/shm/weirt-${process.pid}-agent-e2e`;
afterAll(() => rmSync(TABLE, { force: true, recursive: true }));

describe.skipIf(!isRoot || !hasV1)("weir agent over shared memory (root, netns, cgroup v1)", () => {
  it("reports from inside each namespace, gets balanced, runs its hook with the allocation", async () => {
    const run = await runAgentScenario({
      prefix: `weirt${process.pid % 100000}s`,
      transport: "shm",
      openSource: async (keys) => new ShmReportSource({ path: TABLE, keys, slotCount: 2 }),
      agentArgs: () => ["--shm-path", TABLE],
      transportConfig: { shm: { path: TABLE, slots: 2 } },
    });
    checkAgentRun(run);
  });
});
