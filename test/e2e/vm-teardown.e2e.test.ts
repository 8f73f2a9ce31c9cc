// Root, real QEMU: the launcher (vmsUp in its own process) is SIGKILLed while its guest is
// booting; vmsDown, working from the state file alone, removes QEMU, the tap, the namespace,
// the cgroups and every file — checked against what the kernel lists, not the record.
import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { vmsDown } from "../../src/vm/down.ts";
import { readVmState } from "../../src/vm/state.ts";
import { alive, ipOut } from "./leftovers.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const isRoot = process.getuid?.() === 0;
const hasQemu = existsSync("/usr/bin/qemu-system-x86_64") && existsSync("/bin/busybox");
const PREFIX = `weirtk${process.pid % 100000}`;
const STATE = `/run/weir/vms-${PREFIX}.json`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const LAUNCHER = `
import { vmsUp } from ${JSON.stringify(path.join(REPO, "src/vm/vms.ts"))};
await vmsUp({ prefix: ${JSON.stringify(PREFIX)}, vms: 1, agent: false, maxLifetimeMs: 300_000 });
await new Promise((r) => setTimeout(r, 600_000));
`;

describe.skipIf(!isRoot || !hasQemu)("VM testbed after SIGKILL of its launcher (root)", () => {
  it("vmsDown removes QEMU, tap, namespace, cgroups and files from the record alone", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", LAUNCHER],
      {
        cwd: REPO,
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (b) => {
      stderr += b;
    });
    // Kill it once QEMU is recorded as started (the guest is still booting).
    let qemuPid: number | null = null;
    const end = Date.now() + 120_000;
    while (qemuPid === null && Date.now() < end && child.exitCode === null) {
      await sleep(100);
      qemuPid = readVmState(STATE)?.vms[0]?.qemuPid ?? null;
    }
    // The launcher may have exited on its own (an error before QEMU started): then there is no
    // 'exit' event left to wait for, and the expectation below reports its stderr.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
    }
    expect(qemuPid, `launcher stderr: ${stderr}`).not.toBeNull();
    expect(alive(qemuPid!)).toBe(true); // QEMU outlived its launcher
    const st = readVmState(STATE)!;
    const vm = st.vms[0]!;

    const down = await vmsDown(STATE);
    expect(down.failed).toEqual([]);
    expect(down.clean).toBe(true);
    expect(down.killed).toContain(qemuPid);
    expect(alive(qemuPid!)).toBe(false);
    expect(ipOut("netns", "list")).not.toContain(vm.netns);
    for (const d of vm.cgroupDirs) expect(existsSync(d)).toBe(false);
    for (const d of st.resources.filter((r) => r.kind === "cgroup"))
      expect(existsSync(d.id)).toBe(false);
    expect(existsSync(vm.shmFile)).toBe(false);
    expect(existsSync(STATE)).toBe(false);
    expect(readdirSync("/run/weir").filter((f) => f.startsWith(`vms-${PREFIX}`))).toEqual([]);
  });
});
