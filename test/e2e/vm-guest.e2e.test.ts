// Root, real QEMU guests (TCG), real guest kernels: one guest booted for the whole file
// (a Debian kernel unpacked from its .deb, a busybox initramfs, the host's / over 9p), with
// `weir agent` run by its /init. Its reports reach the host through its own ivshmem region;
// directives reach it the same way; vCPUs are hot-plugged over QMP and onlined by the agent in
// the guest, unplugged and offlined by the guest kernel. Under TCG everything in the guest is
// ~18x slower than on the host: timeouts are long, nothing here is timed as a pass criterion.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cappedDirective } from "../../src/core/directive.ts";
import { encodeReport, KeyRing, parseKeyHex } from "../../src/transport/codec.ts";
import { macKey } from "../../src/transport/mac.ts";
import { AgentSlot } from "../../src/transport/shm.ts";
import { ShmReportSource } from "../../src/transport/shm-source.ts";
import { vmsDown } from "../../src/vm/down.ts";
import { LogTail } from "../../src/vm/guest.ts";
import { GuestCpus } from "../../src/vm/guest-cpus.ts";
import { QmpClient } from "../../src/vm/qmp.ts";
import type { VmRecord, VmState } from "../../src/vm/state.ts";
import { pluggedVcpus } from "../../src/vm/vcpus.ts";
import { vmsUp } from "../../src/vm/vms.ts";
import { alive } from "./leftovers.ts";
import { until } from "./wait.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const isRoot = process.getuid?.() === 0;
const hasQemu = existsSync("/usr/bin/qemu-system-x86_64") && existsSync("/bin/busybox");
const PREFIX = `weirtv${process.pid % 100000}`;
const SLOT_DIR = `/dev/shm/weirt-${process.pid}-vmslots`;
const KEY_HEX = "5c".repeat(32);
/** Sends 10 UDP datagrams, 100 ms apart, to argv[1]:9 (discard; nobody listens in the guest). */
const UDP_SENDER = `const s=require("dgram").createSocket("udp4");let n=0;const t=setInterval(()=>{s.send("weir",9,process.argv[1]);if(++n===10){clearInterval(t);setTimeout(()=>s.close(),200);}},100);`;

describe.skipIf(!isRoot || !hasQemu)("a QEMU guest as a partition (root, TCG)", () => {
  let st: VmState;
  let vm: VmRecord;
  let source: ShmReportSource;
  let qmp: QmpClient;
  let tail: LogTail;

  beforeAll(async () => {
    // The guest runs the compiled agent (from the sources through tsx it stops, see src/vm/README.md).
    const { distStatus } = (await import(
      pathToFileURL(path.join(REPO, "scripts", "dist-status.js")).href
    )) as { distStatus: (root: string) => { current: boolean } };
    if (!distStatus(REPO).current) execFileSync("npm", ["run", "build"], { cwd: REPO });
    // The manager's side first: it publishes the partition's slot, which becomes the guest's
    // ivshmem region.
    source = new ShmReportSource({
      path: SLOT_DIR,
      keys: new KeyRing([{ index: 0, id: "p1", key: parseKeyHex(KEY_HEX) }]),
      // The guest's clock is its own (TCG): allow a generous skew.
      maxAgeMs: 30_000,
      maxFutureMs: 30_000,
    });
    st = await vmsUp({
      prefix: PREFIX,
      // other work on a busy machine must not starve the guests' boot (TCG: ~8 s of CPU each)
      groupCpuShares: 16384,
      vms: ["p1"],
      maxCpus: 2,
      memMiB: 512,
      maxLifetimeMs: 900_000,
      slotDir: SLOT_DIR,
      keysHex: [KEY_HEX],
    });
    vm = st.vms[0]!;
    qmp = await QmpClient.connect(vm.qmpSocket);
    tail = new LogTail(vm.serialLog);
  }, 300_000);

  afterAll(async () => {
    qmp?.close();
    source?.close();
    if (!st) return;
    const down = await vmsDown(st.stateFile);
    expect(down.failed).toEqual([]);
    expect(down.clean).toBe(true);
    // What the kernel lists, not what the record says.
    expect(alive(vm.qemuPid!)).toBe(false);
    expect(execFileSync("ip", ["netns", "list"], { encoding: "utf8" })).not.toContain(vm.netns);
    expect(existsSync(vm.shmFile)).toBe(false); // the slot's link, removed by source.close()
    rmSync(SLOT_DIR, { recursive: true, force: true });
    expect(existsSync(vm.cgroupDirs[0]!)).toBe(false);
    expect(readdirSync("/run/weir").filter((f) => f.startsWith(`vms-${PREFIX}`))).toEqual([]);
  }, 120_000);

  it("accepts the guest's own signed reports from its ivshmem region, counting its packets", async () => {
    const first = await until(
      () => source.latest().get(vm.name),
      240_000,
      "a report from the guest's agent",
    );
    // Real packets into the guest: 10 UDP datagrams from the tap's namespace to a port nobody
    // listens on; the guest kernel counts them on its NIC and answers with ICMP (rate-limited).
    execFileSync(
      "ip",
      ["netns", "exec", vm.netns, process.execPath, "-e", UDP_SENDER, vm.guestAddr],
      {
        timeout: 30_000,
      },
    );
    const later = await until(
      () => {
        const r = source.latest().get(vm.name);
        return r && r.sample.offeredPackets >= first.sample.offeredPackets + 10 ? r : undefined;
      },
      60_000,
      "a report counting the 10 datagrams",
    );
    expect(later.sample.servedPackets).toBeGreaterThan(first.sample.servedPackets);
    expect(later.sample.cpuUsageNs).toBeGreaterThan(first.sample.cpuUsageNs);
    expect(later.sequence).toBeGreaterThan(first.sequence);
    expect(source.rejected().forged).toBe(0);
  });

  it("rejects a report forged into the guest's slot (wrong key) and keeps accepting the guest's", async () => {
    const before = source.accepted();
    const slot = new AgentSlot({ path: SLOT_DIR, slot: vm.index });
    const forged = encodeReport(
      {
        partitionIndex: vm.index,
        sequence: Date.now() * 1000,
        timestampMs: Date.now(),
        rxPackets: 1e9,
        txPackets: 1e9,
        droppedPackets: 0,
        cpuUsageNs: 1,
        nrPeriods: 0,
        nrThrottled: 0,
        throttledNs: 0,
        velocityPacketsPerCpuSec: 1e12,
        velocityWindowMs: 100,
      },
      macKey(parseKeyHex("66".repeat(32))),
    );
    // The guest's agent writes the same slot every 500 ms: should one of its reports land
    // between the forged write and the scan (a window of microseconds), write it again.
    for (let i = 0; i < 5 && source.rejected().forged === 0; i++) {
      slot.writeReport(forged);
      source.latest();
    }
    slot.close();
    expect(source.rejected().forged).toBeGreaterThanOrEqual(1);
    await until(
      () => (source.latest() && source.accepted() > before ? true : undefined),
      60_000,
      "the guest's next report accepted",
    );
    expect(source.latest().get(vm.name)!.sample.offeredPackets).toBeLessThan(1e9);
  });

  it("a directive for 2 CPUs plus a hot-plugged vCPU: the guest onlines it; an unplug: the guest offlines it", async () => {
    // unplug: true — the unplug path itself (QEMU 7.2 TCG survives it but aborts on the next
    // plug, so weir does not unplug by default; nothing is plugged after it here)
    const cpus = new GuestCpus({
      qmp,
      tail: new LogTail(vm.serialLog),
      minCpus: 1,
      maxCpus: 2,
      unplug: true,
    });
    expect(cpus.status()).toMatchObject({ applied: 1, gone: false });
    expect(await pluggedVcpus(qmp)).toBe(1);
    tail.mark();
    const sentAt = Date.now();
    source.sendDirective(vm.name, cappedDirective(vm.name, 2000, 200, 2));
    expect(cpus.request(2)).toBe(2);
    const up = await until(
      () => {
        const s = cpus.status();
        return s.applied === 2 ? s : undefined;
      },
      180_000,
      "the guest onlining the hot-plugged vCPU",
    );
    await cpus.idle();
    expect(cpus.status()).toMatchObject({ desired: 2, plugged: 2, applied: 2, lastError: null });
    // The agent's own log line: it wrote cpu1/online (on the directive or when the vCPU appeared).
    await until(
      () => (tail.read() !== null && /cpu1\/online/.test(tail.seen) ? true : undefined),
      30_000,
      "agent log",
    );
    console.log(`directive + hot-plug -> guest CPU 1 online: ${up.appliedAtMs! - sentAt} ms`);

    // Shrinking: unplug first, and the guest kernel offlines the CPU itself; the directive
    // follows. (With the directive first, the agent offlined cpu1 before the unplug.)
    tail.mark();
    expect(cpus.request(1)).toBe(1);
    await until(
      () => (cpus.status().applied === 1 ? true : undefined),
      120_000,
      "the guest offlining the unplugged vCPU",
    );
    source.sendDirective(vm.name, cappedDirective(vm.name, 1000, 100, 1));
    await cpus.idle();
    // QEMU's side: the vCPU released (its slot free again), no error left.
    expect(await pluggedVcpus(qmp)).toBe(1);
    expect(cpus.status()).toMatchObject({ desired: 1, plugged: 1, applied: 1, lastError: null });
  });

  it("QEMU killed: its QMP closes, its vCPUs read as gone, its reports go stale; down still cleans", async () => {
    const cpus = new GuestCpus({ qmp, tail: new LogTail(vm.serialLog), minCpus: 1, maxCpus: 2 });
    process.kill(vm.qemuPid!, "SIGKILL");
    await until(() => (qmp.closed ? true : undefined), 30_000, "QMP closed");
    expect(cpus.status().gone).toBe(true);
    expect(cpus.request(2)).toBe(2); // accepted as desired, nothing tried on a dead QEMU
    await cpus.idle();
    expect(cpus.status()).toMatchObject({ desired: 2, plugged: null, gone: true });
    await until(
      () => (source.isStale(vm.name, Date.now()) ? true : undefined),
      30_000,
      "reports stale",
    );
  });
});
