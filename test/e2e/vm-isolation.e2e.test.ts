// Root, real QEMU guests (TCG): two guests, each with its own ivshmem region, run a probe
// inside instead of the agent (vmsUp's guestScript). From inside its own kernel, each guest
// maps the ivshmem BAR (resource2, as the agent does), tries to map past its end, reads the
// whole region and then overwrites every byte of it. The host first writes a secret into each
// guest's region. A guest cannot read or write another guest's slot when: each guest read its
// own secret and never the other's, the kernel refused a mapping past the region, and after
// both overwrote everything they could reach, each region holds only its own guest's bytes.
// The regions are each guest's own zeroed page here (no manager runs); with a manager they are
// its slot memfds, mapped by QEMU the same way (vm-actuator.e2e.test.ts checks those mappings).
// Under TCG everything in a guest is ~18x slower: long, bounded timeouts; nothing is timed.
import { execFileSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, writeSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { vmsDown } from "../../src/vm/down.ts";
import { LogTail } from "../../src/vm/guest.ts";
import type { VmRecord, VmState } from "../../src/vm/state.ts";
import { vmsUp } from "../../src/vm/vms.ts";
import { alive, ipOut } from "./leftovers.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const isRoot = process.getuid?.() === 0;
const hasQemu = existsSync("/usr/bin/qemu-system-x86_64") && existsSync("/bin/busybox");
const PREFIX = `weirti${process.pid % 100000}`;
const SECRETS = ["secret-g1-5e1f0a", "secret-g2-77c3b9"];

/** The probe each guest runs (compiled weir: findIvshmemRegion and mapFd, as the agent uses). */
const PROBE = `
const fs = await import("node:fs");
const { findIvshmemRegion } = await import(${JSON.stringify(pathToFileURL(path.join(REPO, "dist/src/agent/ivshmem.js")).href)});
const { mapFd } = await import(${JSON.stringify(pathToFileURL(path.join(REPO, "dist/src/transport/mmap.js")).href)});
const say = (s) => console.log("weir-iso: " + s);
const ip = /weir[.]ip=([0-9.]+)/.exec(fs.readFileSync("/proc/cmdline", "utf8"))?.[1] ?? "unknown";
const res = findIvshmemRegion("/sys");
const size = fs.statSync(res).size;
say("region " + size);
const fd = fs.openSync(res, "r+");
let beyond = "mapped";
try { mapFd(fd, size * 2, "past the region").close(); } catch { beyond = "refused"; }
say("beyond " + beyond);
const m = mapFd(fd, size, "region");
const b = new Uint8Array(m.buffer);
for (let i = 0; i < 1500 && b[0] === 0; i++) await new Promise((r) => setTimeout(r, 200));
say("saw " + JSON.stringify(Buffer.from(b).toString("latin1").match(/secret-[a-z0-9-]+/g) ?? []));
const mark = Buffer.from("wrote-by-" + ip + ";");
for (let o = 0; o < size; o++) b[o] = mark[o % mark.length];
say("wrote " + size + " " + mark.toString());
m.close();
`;

const guestScript = `#!/bin/sh
${process.execPath} --input-type=module -e '${PROBE.replace(/'/g, "'\\''")}' 2>&1
sleep 600
`;

describe.skipIf(!isRoot || !hasQemu)("two guests' ivshmem regions (root, TCG)", () => {
  let st: VmState | null = null;
  const tails = new Map<string, LogTail>();

  beforeAll(async () => {
    // The probe runs the compiled weir.
    const { distStatus } = (await import(
      pathToFileURL(path.join(REPO, "scripts", "dist-status.js")).href
    )) as { distStatus: (root: string) => { current: boolean } };
    if (!distStatus(REPO).current) execFileSync("npm", ["run", "build"], { cwd: REPO });
    st = await vmsUp({
      prefix: PREFIX,
      // other work on a busy machine must not starve the guests' boot (TCG: ~8 s of CPU each)
      groupCpuShares: 16384,
      vms: ["g1", "g2"],
      maxCpus: 1,
      memMiB: 384,
      maxLifetimeMs: 600_000,
      agent: false,
      guestScript,
    });
    for (const vm of st.vms) tails.set(vm.name, new LogTail(vm.serialLog));
  }, 400_000);

  afterAll(async () => {
    if (!st) return;
    const down = await vmsDown(st.stateFile);
    expect(down.failed).toEqual([]);
    expect(down.clean).toBe(true);
    for (const vm of st.vms) {
      expect(alive(vm.qemuPid!)).toBe(false);
      for (const d of vm.cgroupDirs) expect(existsSync(d)).toBe(false);
      expect(existsSync(vm.shmFile)).toBe(false);
    }
    expect(ipOut("netns", "list")).not.toContain(PREFIX);
    expect(existsSync(st.stateFile)).toBe(false);
  }, 120_000);

  it("a guest reads only its own region, cannot map past it, and its writes land only there", async () => {
    const [g1, g2] = st!.vms as [VmRecord, VmRecord];
    // Each probe says how big its region is and whether a larger mapping was refused.
    for (const vm of [g1, g2]) {
      const tail = tails.get(vm.name)!;
      const region = await tail.waitFor(/weir-iso: region (\d+)/, 240_000);
      expect(region, `${vm.name} console: ${tail.seen.slice(-3000)}`).not.toBeNull();
      expect(Number(/weir-iso: region (\d+)/.exec(tail.seen)![1])).toBe(vm.shmBytes);
      const beyond = await tail.waitFor(/weir-iso: beyond \w+/, 120_000);
      expect(beyond, `${vm.name} console: ${tail.seen.slice(-3000)}`).not.toBeNull();
      expect(tail.seen).toContain("weir-iso: beyond refused");
    }
    // The host writes each guest's secret into that guest's region only.
    for (const [i, vm] of [g1, g2].entries()) {
      const fd = openSync(vm.shmFile, "r+");
      writeSync(fd, Buffer.from(SECRETS[i]!), 0, SECRETS[i]!.length, 0);
      closeSync(fd);
    }
    for (const [i, vm] of [g1, g2].entries()) {
      const tail = tails.get(vm.name)!;
      const wrote = await tail.waitFor(/weir-iso: wrote \d+/, 180_000);
      expect(wrote, `${vm.name} console: ${tail.seen.slice(-3000)}`).not.toBeNull();
      const saw = JSON.parse(/weir-iso: saw (\[.*\])/.exec(tail.seen)![1]!) as string[];
      expect(saw).toEqual([SECRETS[i]]);
    }
    // Every byte of each region is its own guest's mark: nothing of the other guest's.
    for (const vm of [g1, g2]) {
      const bytes = readFileSync(vm.shmFile);
      expect(bytes.length).toBe(vm.shmBytes);
      const mark = Buffer.from(`wrote-by-${vm.guestAddr};`);
      const expected = Buffer.alloc(vm.shmBytes, mark);
      expect(
        bytes.equals(expected),
        `${vm.name}: ${bytes.subarray(0, 80).toString("latin1")}`,
      ).toBe(true);
    }
    console.info(
      `regions of ${g1.shmBytes} bytes; each guest saw only its own secret, a larger mapping was refused, and each region holds only its own guest's writes`,
    );
  }, 600_000);
});
