// Root, real kernel: `weir run` hands a partition's eBPF counters to the manager a reload starts
// instead of detaching them and loading new ones. Two partitions counted by eBPF (`packets:
// bpf`), a process in a's cgroup receiving UDP datagrams over loopback; a SIGHUP removes b. a's
// programs are the same ones (the same program ids, one per hook) after the reload and its
// counts go on: /metrics (one registry across the restart) says exactly the datagrams sent
// before and after. b's, kept for a next manager that does not take them up, are detached
// although its cgroup is still there; SIGTERM leaves nothing attached. Cgroups are
// weirt-<pid>-hand/{a,b} (v1 cpu, cpuacct and the unified v2 tree); every process here is started
// here and killed by its pid.
import type { ChildProcess } from "node:child_process";
import dgram from "node:dgram";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { attachedProgramIds } from "../../src/bpf/objects.ts";
import { BPF_CGROUP_INET_EGRESS, BPF_CGROUP_INET_INGRESS } from "../../src/bpf/syscall.ts";
import { type CgroupPeer, rmdirCgroup, sendToPeer, spawnCgroupPeer } from "./cgroup-peer.ts";
import { freePort, sleep } from "./wait.ts";
import { spawnWeirRun } from "./weir-run.ts";

const ROOT = "/sys/fs/cgroup";
const PARENT = `weirt-${process.pid}-hand`;
const HIERARCHIES = ["cpu", "cpuacct", "unified"].map((h) => path.join(ROOT, h));
const canRun =
  process.getuid?.() === 0 &&
  fs.existsSync(path.join(ROOT, "cpu/cpu.cfs_quota_us")) &&
  fs.existsSync(path.join(ROOT, "unified/cgroup.controllers"));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "weir-e2e-handover-"));
const children: ChildProcess[] = [];
let peer: CgroupPeer | null = null;
let sender: dgram.Socket | null = null;
const dirsOf = (p: string) => HIERARCHIES.map((h) => path.join(h, PARENT, p));
const unifiedOf = (p: string) => path.join(ROOT, "unified", PARENT, p);
/** The ids of the programs attached at each hook of a partition's v2 directory. */
const programs = (p: string) => ({
  ingress: attachedProgramIds(unifiedOf(p), BPF_CGROUP_INET_INGRESS),
  egress: attachedProgramIds(unifiedOf(p), BPF_CGROUP_INET_EGRESS),
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await peer?.kill();
  sender?.close();
  for (const p of ["a", "b"]) for (const d of dirsOf(p)) await rmdirCgroup(d);
  for (const h of HIERARCHIES) await rmdirCgroup(path.join(h, PARENT));
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Polls `ok` every 100 ms until it holds; throws naming `what` after `ms`. */
async function until(
  ok: () => Promise<unknown> | unknown,
  ms: number,
  what: string,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(100);
  }
}

const config = (port: number, names: string[]) =>
  `capacity: { cpus: 2 }\nintervalMs: 100\nplacement: { mode: off }\napi: { listen: "127.0.0.1:${port}" }\npartitions:\n${names
    .map((n) => `  - { name: ${n}, cgroup: ${PARENT}/${n}, packets: bpf }\n`)
    .join("")}`;

describe.skipIf(!canRun)("weir run: eBPF counters handed over at a reload (root)", () => {
  it("keeps a's programs and counts across a SIGHUP, detaches b's", async () => {
    for (const h of HIERARCHIES) fs.mkdirSync(path.join(h, PARENT));
    for (const p of ["a", "b"]) for (const d of dirsOf(p)) fs.mkdirSync(d);
    peer = await spawnCgroupPeer(dirsOf("a").map((d) => path.join(d, "cgroup.procs")));
    sender = dgram.createSocket("udp4");
    await new Promise<void>((r) => sender!.bind(0, "127.0.0.1", r));
    const port = await freePort();
    const file = path.join(tmp, "weir.yaml");
    fs.writeFileSync(file, config(port, ["a", "b"]));
    const w = spawnWeirRun(file, children);
    const get = async (route: string) => (await fetch(`http://127.0.0.1:${port}${route}`)).text();
    const packetsIn = async (): Promise<number> => {
      const m = /^weir_partition_packets_total\{partition="a",direction="in"\} (\S+)$/m.exec(
        await get("/metrics"),
      );
      return m ? Number(m[1]) : Number.NaN;
    };
    const fail = (what: string) => (err: unknown) => {
      throw new Error(`${what}: ${(err as Error).message}\nweir's log:\n${w.err()}`);
    };
    await until(
      async () => {
        try {
          return JSON.parse(await get("/api/cycles?limit=5")).cycles.length >= 3;
        } catch {
          return false;
        }
      },
      30_000,
      "weir's first cycles",
    ).catch(fail("start"));
    const before = { a: programs("a"), b: programs("b") };
    expect(before.a.ingress).toHaveLength(1);
    expect(before.a.egress).toHaveLength(1);
    expect(before.b.ingress).toHaveLength(1);

    await sendToPeer(sender, peer, 300);
    await until(async () => (await packetsIn()) >= 300 - 1e-6, 30_000, "300 counted").catch(
      fail("first batch"),
    );

    // b removed from the file: the manager restarts in the process
    fs.writeFileSync(file, config(port, ["a"]));
    w.child.kill("SIGHUP");
    await until(
      () => w.err().includes('"msg":"weir managing 1 partition(s)'),
      30_000,
      "the restart on the new config",
    ).catch(fail("reload"));
    // a: the same programs, taken up; b: detached, its cgroup still there
    expect(programs("a")).toEqual(before.a);
    expect(programs("b")).toEqual({ ingress: [], egress: [] });
    expect(fs.existsSync(unifiedOf("b"))).toBe(true);

    // counts go on: the new manager's first cycles, then 200 more
    await until(
      async () => JSON.parse(await get("/api/cycles?limit=5")).cycles.length >= 3,
      30_000,
      "the new manager's cycles",
    ).catch(fail("after the reload"));
    await sendToPeer(sender, peer, 200);
    await until(async () => (await packetsIn()) >= 500 - 1e-6, 30_000, "500 counted").catch(
      fail("second batch"),
    );
    expect(await packetsIn()).toBeCloseTo(500, 6);
    expect(w.err()).not.toContain('"level":50');

    w.child.kill("SIGTERM");
    expect(await w.exited).toBe(0);
    expect(programs("a")).toEqual({ ingress: [], egress: [] });
    expect(programs("b")).toEqual({ ingress: [], egress: [] });
  }, 120_000);
});
