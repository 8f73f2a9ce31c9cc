// Real-host test of src/sensors (needs root and cgroup v1 cpu + cpuacct, as on this host):
// a real v1 cgroup with a real CPU-burning child in it, real UDP packets on loopback, the
// child's /proc/<pid>/net/snmp, a real veth deleted and re-created, and the errors when
// the process and the cgroup go away. Everything made here is named weirt-<pid>-... and
// removed in afterAll.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import dgram from "node:dgram";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectCgroupLayout } from "../../src/cgroup/layout.ts";
import { locateCgroup } from "../../src/cgroup/paths.ts";
import { ErrorCodes, type WeirError } from "../../src/core/errors.ts";
import { HeldInterfaceCounters, readSnmpUdp } from "../../src/sensors/packets.ts";
import { openPartitionSensor } from "../../src/sensors/partition.ts";
import { throughputFromSamples } from "../../src/sensors/throughput.ts";
import { defaultRoots, type SensorSpec } from "../../src/sensors/types.ts";

const CGROOT = "/sys/fs/cgroup";
const canRun =
  process.getuid?.() === 0 &&
  fs.existsSync(path.join(CGROOT, "cpu/cpu.cfs_quota_us")) &&
  fs.existsSync(path.join(CGROOT, "cpuacct/cpuacct.usage"));

const NAME = `weirt-${process.pid}-sensors`;
const VETH_A = `weirt${process.pid}a`;
const VETH_B = `weirt${process.pid}b`;
const cgDirs = [path.join(CGROOT, "cpu", NAME), path.join(CGROOT, "cpuacct", NAME)];

// The child: a UDP socket with a tiny receive buffer, and a CPU burn on request that
// blocks its event loop (so datagrams pile up and overflow the buffer meanwhile).
const CHILD = `
const dgram = require("node:dgram");
const s = dgram.createSocket({ type: "udp4", recvBufferSize: 4096 });
s.on("message", () => {});
s.bind(0, "127.0.0.1", () => process.stdout.write("port " + s.address().port + "\\n"));
require("node:readline").createInterface({ input: process.stdin }).on("line", (line) => {
  const m = /^burn (\\d+)$/.exec(line);
  if (!m) return;
  process.stdout.write("burning\\n");
  const start = process.cpuUsage();
  for (;;) { const u = process.cpuUsage(start); if (u.user + u.system >= Number(m[1]) * 1000) break; }
  process.stdout.write("burned\\n");
});
setTimeout(() => process.exit(0), 120000).unref();
`;

let child: ChildProcess | null = null;
let childPort = 0;
const lines: string[] = [];
/** Pending waitForLine checks; each returns true once it has taken its line. */
let waiters: Array<() => boolean> = [];

function waitForLine(pred: (l: string) => boolean, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("child did not answer in time")), timeoutMs);
    const check = (): boolean => {
      const i = lines.findIndex(pred);
      if (i < 0) return false;
      clearTimeout(timer);
      resolve(lines.splice(i, 1)[0]!);
      return true;
    };
    if (!check()) waiters.push(check);
  });
}

/** Sends `count` 64-byte datagrams to 127.0.0.1:port; returns how many the kernel took. */
async function sendUdp(port: number, count: number): Promise<number> {
  const sock = dgram.createSocket("udp4");
  const payload = Buffer.alloc(64, 1);
  let ok = 0;
  await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<void>((resolve) =>
          sock.send(payload, port, "127.0.0.1", (err) => {
            if (!err) ok++;
            resolve();
          }),
        ),
    ),
  );
  sock.close();
  return ok;
}

const ip = (...args: string[]): void => {
  execFileSync("ip", args, { stdio: "ignore" });
};
const linkExists = (name: string): boolean => fs.existsSync(`/sys/class/net/${name}`);

async function rmdirRetry(dir: string): Promise<void> {
  for (let i = 0; i < 50 && fs.existsSync(dir); i++) {
    try {
      fs.rmdirSync(dir);
    } catch {
      await new Promise((r) => setTimeout(r, 100)); // EBUSY while the exited task is reaped
    }
  }
}

async function stopChild(): Promise<void> {
  const c = child;
  if (c === null || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once("exit", r));
  c.kill("SIGKILL"); // by its pid: the process this file started
  await exited;
}

describe.skipIf(!canRun)("sensors on real cgroups, interfaces and processes (root, e2e)", () => {
  beforeAll(async () => {
    for (const d of cgDirs) fs.mkdirSync(d);
    child = spawn(process.execPath, ["-e", CHILD], { stdio: ["pipe", "pipe", "inherit"] });
    readline.createInterface({ input: child.stdout! }).on("line", (l) => {
      lines.push(l);
      waiters = waiters.filter((w) => !w());
    });
    childPort = Number((await waitForLine((l) => l.startsWith("port "))).slice(5));
    for (const d of cgDirs) fs.writeFileSync(path.join(d, "cgroup.procs"), String(child.pid));
  });

  afterAll(async () => {
    await stopChild();
    for (const d of cgDirs) await rmdirRetry(d);
    if (linkExists(VETH_A)) ip("link", "del", VETH_A);
    expect(cgDirs.filter((d) => fs.existsSync(d))).toEqual([]);
    expect(linkExists(VETH_A) || linkExists(VETH_B)).toBe(false);
  });

  const spec = (): SensorSpec => ({
    cgroup: NAME,
    interfaces: [{ name: "lo", offered: "rx", served: "tx" }],
    pid: child!.pid!,
  });

  it("detects this host's cgroup as v1 with separate cpu and cpuacct directories", () => {
    expect(detectCgroupLayout(CGROOT)).toMatchObject({
      version: 1,
      cpu: path.join(CGROOT, "cpu"),
      cpuacct: path.join(CGROOT, "cpuacct"),
    });
    expect(locateCgroup(CGROOT, NAME)).toMatchObject({
      version: 1,
      cpu: cgDirs[0],
      cpuacct: cgDirs[1],
      threadsFile: path.join(cgDirs[0]!, "tasks"),
    });
  });

  it("CPU usage grows while the child burns; loopback packets and socket drops grow with real UDP", async () => {
    const sensor = openPartitionSensor(spec(), defaultRoots);
    try {
      const snmp0 = readSnmpUdp("/proc", child!.pid!);
      const s0 = sensor.read(Date.now());
      child!.stdin!.write("burn 400\n"); // 400 ms of CPU time, measured by the child itself
      await waitForLine((l) => l === "burning");
      const sent = await sendUdp(childPort, 2000); // lands while the child's loop is blocked
      await waitForLine((l) => l === "burned");
      const s1 = sensor.read(Date.now());
      const snmp1 = readSnmpUdp("/proc", child!.pid!);

      // cpuacct.usage counts the child's 400 ms (minus at most a 4 ms tick or so)
      expect(s1.cpuUsageNs - s0.cpuUsageNs).toBeGreaterThanOrEqual(350e6);
      // every datagram crossed lo: counted in rx_packets, or in rx_dropped if lo's backlog
      // overflowed; other processes on this host may add more, never less
      expect(sent).toBeGreaterThan(1900);
      expect(s1.offeredPackets - s0.offeredPackets).toBeGreaterThanOrEqual(sent);
      expect(s1.servedPackets - s0.servedPackets).toBeGreaterThanOrEqual(sent);
      // the child's 4 KiB buffer held a few; most were dropped at the socket (snmp only)
      const rcvbuf = snmp1.rcvbufErrors - snmp0.rcvbufErrors;
      expect(rcvbuf).toBeGreaterThanOrEqual(200);
      // InErrors moves with every RcvbufErrors drop (charged twice by the kernel)
      expect(snmp1.inErrors - snmp0.inErrors).toBeGreaterThanOrEqual(rcvbuf);
      expect(s1.droppedPackets - s0.droppedPackets).toBeGreaterThanOrEqual(rcvbuf);

      const t = throughputFromSamples("real", s0, s1, "host");
      expect(t.cpuCores).toBeGreaterThan(0);
      expect(t.offeredPacketsPerSec).toBeGreaterThan(0);
      expect(t.rawVelocityPacketsPerCpuSec).not.toBeNull();
    } finally {
      sensor.close();
    }
  });

  it("cpu.stat shows throttling under a real quota", async () => {
    const quotaFile = path.join(cgDirs[0]!, "cpu.cfs_quota_us");
    const sensor = openPartitionSensor({ cgroup: NAME, interfaces: [] }, defaultRoots);
    try {
      fs.writeFileSync(quotaFile, "20000"); // 20 ms per 100 ms period
      const s0 = sensor.read(Date.now());
      child!.stdin!.write("burn 100\n"); // 100 ms of CPU at 20 % takes >= 0.4 s
      await waitForLine((l) => l === "burned");
      const s1 = sensor.read(Date.now());
      expect(s1.nrPeriods - s0.nrPeriods).toBeGreaterThanOrEqual(3);
      expect(s1.nrThrottled - s0.nrThrottled).toBeGreaterThanOrEqual(1);
      expect(s1.throttledNs - s0.throttledNs).toBeGreaterThan(0);
      const t = throughputFromSamples("real", s0, s1, "host");
      expect(t.throttledFraction).toBeGreaterThan(0);
      expect(t.throttledFraction).toBeLessThanOrEqual(1);
      expect(t.cpuCores).toBeLessThanOrEqual(0.3); // capped near 0.2 cores
    } finally {
      fs.writeFileSync(quotaFile, "-1");
      sensor.close();
    }
  });

  it("a deleted interface is INTERFACE_GONE; re-created, its stale descriptors are reopened", () => {
    ip("link", "add", VETH_A, "type", "veth", "peer", "name", VETH_B);
    const sensor = openPartitionSensor(
      { cgroup: NAME, interfaces: [{ name: VETH_A, offered: "tx", served: "rx" }] },
      defaultRoots,
    );
    const held = new HeldInterfaceCounters("/sys", { name: VETH_A, offered: "tx", served: "rx" });
    try {
      expect(sensor.read(0).offeredPackets).toBeGreaterThanOrEqual(0);
      ip("link", "del", VETH_A);
      for (const read of [() => sensor.read(1), () => held.read()]) {
        try {
          read();
          expect.unreachable();
        } catch (e) {
          expect((e as WeirError).code).toBe(ErrorCodes.INTERFACE_GONE);
          expect((e as WeirError).retryable).toBe(true);
          expect((e as WeirError).message).toContain(VETH_A);
        }
      }
      ip("link", "add", VETH_A, "type", "veth", "peer", "name", VETH_B);
      const again = sensor.read(2);
      expect(again.offeredPackets).toBeGreaterThanOrEqual(0);
      expect(held.read().servedPackets).toBeGreaterThanOrEqual(0);
      expect(held.reopens).toBe(3); // offered, served and dropped files, once each
    } finally {
      sensor.close();
      held.close();
      if (linkExists(VETH_A)) ip("link", "del", VETH_A);
    }
  });

  it("the child's exit is PROCESS_GONE, the cgroup's removal CGROUP_GONE", async () => {
    const withPid = openPartitionSensor(spec(), defaultRoots);
    const cpuOnly = openPartitionSensor({ cgroup: NAME, interfaces: [] }, defaultRoots);
    try {
      withPid.read(0);
      await stopChild();
      try {
        withPid.read(1);
        expect.unreachable();
      } catch (e) {
        expect((e as WeirError).code).toBe(ErrorCodes.PROCESS_GONE);
        expect((e as WeirError).retryable).toBe(false);
      }
      cpuOnly.read(2); // the cgroup is still there, just empty
      for (const d of cgDirs) await rmdirRetry(d);
      try {
        cpuOnly.read(3);
        expect.unreachable();
      } catch (e) {
        expect((e as WeirError).code).toBe(ErrorCodes.CGROUP_GONE);
        expect((e as WeirError).retryable).toBe(false);
        expect((e as WeirError).message).toContain(NAME);
      }
    } finally {
      withPid.close();
      cpuOnly.close();
    }
  });
});
