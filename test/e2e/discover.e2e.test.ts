// Root, real cgroups (v1 cpu + cpuacct, the unified v2 tree of a hybrid host): `weir run` with
// no `partitions:`, only `discover:` templates, manages the cgroups they match while they are
// there. A batch cgroup there at start is found and put in the idle class; a network cgroup
// made while weir runs is found, counted by eBPF on its v2 twin, and the UDP datagrams a
// process inside it receives and sends over loopback are its offered and served packets,
// exactly; a cgroup found past `discover.maxPartitions` is logged as not managed and left
// alone while the others run on; a removed cgroup is dropped (and the refused one, now within
// the limit, taken up) without an error; SIGTERM restores what weir found in the cgroups left
// and detaches every program of weir. Cgroups are weirt-<pid>-disc/* (made here in cpu,
// cpuacct and unified, removed here); every process here is started here and killed by its pid.
import type { ChildProcess } from "node:child_process";
import dgram from "node:dgram";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { attachedProgramIds } from "../../src/bpf/objects.ts";
import { BPF_CGROUP_INET_EGRESS, BPF_CGROUP_INET_INGRESS } from "../../src/bpf/syscall.ts";
import { BPF_PIN_ROOT } from "../../src/sensors/source-bpf.ts";
import { type CgroupPeer, rmdirCgroup, sendToPeer, spawnCgroupPeer } from "./cgroup-peer.ts";
import { freePort, sleep } from "./wait.ts";
import { spawnWeirRun, type WeirRun } from "./weir-run.ts";

const ROOT = "/sys/fs/cgroup";
const PARENT = `weirt-${process.pid}-disc`;
const HIERARCHIES = ["cpu", "cpuacct", "unified"].map((h) => path.join(ROOT, h));
const canRun =
  process.getuid?.() === 0 &&
  fs.existsSync(path.join(ROOT, "cpu/cpu.cfs_quota_us")) &&
  fs.existsSync(path.join(ROOT, "cpuacct/cpuacct.usage")) &&
  fs.existsSync(path.join(ROOT, "unified/cgroup.controllers"));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "weir-e2e-discover-"));
const children: ChildProcess[] = [];
const peers: CgroupPeer[] = [];
/** Every cgroup directory made here, in the order made (removed in reverse). */
const made: string[] = [];
let sink: dgram.Socket | null = null;
let sender: dgram.Socket | null = null;
let sinkGot = 0;

const cpuDir = (child: string) => path.join(ROOT, "cpu", PARENT, child);
const unifiedDir = (child: string) => path.join(ROOT, "unified", PARENT, child);
const dirsOf = (child: string) => HIERARCHIES.map((h) => path.join(h, PARENT, child));
const read = (child: string, file: string) =>
  fs.readFileSync(path.join(cpuDir(child), file), "utf8").trim();
const hasIdle = fs.existsSync(path.join(ROOT, "cpu/cpu.idle"));

function mkdir(dir: string): void {
  fs.mkdirSync(dir);
  made.push(dir);
}

/** The cgroup in cpuacct and unified, then in cpu (where the templates look) last. */
function makeCgroup(child: string): void {
  for (const d of dirsOf(child).reverse()) mkdir(d);
}

const WAIT_MS = 60_000;

afterAll(async () => {
  // a weir still running (a failed test) is stopped as weir is meant to be: SIGTERM detaches
  // its programs and restores its cgroups; SIGKILL if it does not exit
  for (const c of children)
    if (c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((r) => c.once("exit", r));
      c.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    }
  for (const p of peers) await p.kill();
  sink?.close();
  sender?.close();
  // children first (made after their parent), then the parent, in every hierarchy
  for (const d of [...made].reverse()) await rmdirCgroup(d);
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface PartitionsBody {
  partitions: Array<{
    id: string;
    status: string;
    spec: { kind: string; importance: number };
    throughput: null | { offeredPacketsPerSec: number; servedPacketsPerSec: number };
  }>;
}

function startWeir(cfg: string, port: number) {
  const run: WeirRun = spawnWeirRun(cfg, children);
  const get = async (route: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${route}`);
    if (!res.ok) throw new Error(`${route}: ${res.status}`);
    return res.text();
  };
  /** The JSON lines of weir's log (--json). */
  const lines = (): Array<{ level: number; msg: string }> =>
    run
      .err()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l));
  return { ...run, get, lines };
}
type Weir = ReturnType<typeof startWeir>;

/**
 * Polls `cond` (an error thrown = not yet) every 100 ms for `WAIT_MS`; a timeout says `what`,
 * what `cond` last saw (`seen`) and weir's log.
 */
async function waitFor(
  w: Weir,
  what: string,
  cond: (seen: (v: unknown) => void) => Promise<boolean>,
): Promise<void> {
  const end = Date.now() + WAIT_MS;
  let last: unknown = "nothing";
  const seen = (v: unknown) => {
    last = v;
  };
  for (;;) {
    const ok = await cond(seen).catch((e: unknown) => {
      seen(String(e));
      return false;
    });
    if (ok) return;
    if (Date.now() > end)
      throw new Error(
        `${what}: not within ${WAIT_MS} ms; last seen: ${JSON.stringify(last)}\nweir's log:\n${w.err()}`,
      );
    await sleep(100);
  }
}

const partitions = async (w: Weir): Promise<PartitionsBody["partitions"]> =>
  (JSON.parse(await w.get("/api/partitions")) as PartitionsBody).partitions;
const ids = async (w: Weir): Promise<string[]> => (await partitions(w)).map((p) => p.id);

/** `weir_partition_packets_total` of a partition: in (offered) and out (served). */
async function metricPackets(w: Weir, id: string): Promise<{ in: number; out: number }> {
  const text = await w.get("/metrics");
  const v = (d: string) => {
    const m = new RegExp(
      `^weir_partition_packets_total\\{partition="${id}",direction="${d}"\\} (\\S+)$`,
      "m",
    ).exec(text);
    return m ? Number(m[1]) : Number.NaN;
  };
  return { in: v("in"), out: v("out") };
}

/**
 * Packet counts equal to within 1e-6: weir's totals are sums of rate × window, so an exact
 * kernel count of 30 may read 29.999999999999996.
 */
const near = (got: { in: number; out: number }, want: { in: number; out: number }) =>
  Math.abs(got.in - want.in) < 1e-6 && Math.abs(got.out - want.out) < 1e-6;

/** A partition's offered and served packets summed over the API's cycle records (rate × window). */
async function apiPackets(w: Weir, id: string): Promise<{ in: number; out: number }> {
  const body = JSON.parse(await w.get("/api/cycles?limit=1000")) as {
    cycles: Array<{
      partitions: Array<{
        id: string;
        throughput: null | {
          windowMs: number;
          offeredPacketsPerSec: number;
          servedPacketsPerSec: number;
        };
      }>;
    }>;
  };
  const sum = { in: 0, out: 0 };
  for (const r of body.cycles)
    for (const p of r.partitions) {
      if (p.id !== id || !p.throughput) continue;
      const sec = p.throughput.windowMs / 1000;
      sum.in += p.throughput.offeredPacketsPerSec * sec;
      sum.out += p.throughput.servedPacketsPerSec * sec;
    }
  return sum;
}

/** Datagrams from the test (outside every partition) to a peer, each received. */
const sendTo = (peer: CgroupPeer, n: number): Promise<void> => sendToPeer(sender!, peer, n);

/** Datagrams from a peer to the test's sink, each received (25 at a time). */
async function sendFrom(peer: CgroupPeer, n: number): Promise<void> {
  for (let left = n; left > 0; left -= 25) {
    const k = Math.min(25, left);
    const before = sinkGot;
    await peer.send(k, (sink!.address() as { port: number }).port);
    const end = Date.now() + 20_000;
    while (sinkGot !== before + k) {
      if (Date.now() > end) throw new Error(`${k} datagrams from peer ${peer.pid}: not received`);
      await sleep(10);
    }
  }
}

const attached = (child: string, type: number) => attachedProgramIds(unifiedDir(child), type);

function writeConfig(port: number): string {
  const file = path.join(tmp, "weir.yaml");
  fs.writeFileSync(
    file,
    `capacity: { cpus: 2 }
intervalMs: 200
onShutdown: restore
api: { listen: "127.0.0.1:${port}" }
discover:
  intervalMs: 200
  maxPartitions: 2
  partitions:
    - { cgroup: ${PARENT}/batch-*, kind: batch, name: "b-{1}" }
    - { cgroup: ${PARENT}/net-*, packets: bpf, name: "n-{1}", importance: 1 }
`,
  );
  return file;
}

const count = (text: string, s: string) => text.split(s).length - 1;

describe.skipIf(!canRun)(
  "weir run: discover: partitions found in the cgroup tree (root, e2e)",
  () => {
    it("manages the cgroups its templates match while they are there, counts a found one's packets with eBPF, refuses one past maxPartitions, restores at SIGTERM", async () => {
      for (const h of HIERARCHIES) mkdir(path.join(h, PARENT));
      sink = dgram.createSocket("udp4");
      sink.on("message", () => {
        sinkGot++;
      });
      await new Promise<void>((r) => sink!.bind(0, "127.0.0.1", () => r()));
      sender = dgram.createSocket("udp4");
      await new Promise<void>((r) => sender!.bind(0, "127.0.0.1", () => r()));

      // 1. a batch cgroup there at start: found, managed, in the idle class
      makeCgroup("batch-x");
      const port = await freePort();
      const w = startWeir(writeConfig(port), port);
      await waitFor(w, "b-x listed by /api/partitions", async (seen) => {
        const ps = await partitions(w);
        seen(ps);
        return ps.length === 1 && ps[0]!.id === "b-x" && ps[0]!.status !== "unknown";
      });
      expect(w.err()).toContain(`discover: 1 partition(s) found: b-x (${PARENT}/batch-x)`);
      expect((await partitions(w))[0]!.spec.kind).toBe("batch");
      if (hasIdle)
        await waitFor(w, "batch-x's cpu.idle = 1", async () => read("batch-x", "cpu.idle") === "1");
      else
        await waitFor(
          w,
          "batch-x's cpu.shares = 2",
          async () => read("batch-x", "cpu.shares") === "2",
        );

      // 2. a network cgroup made while weir runs (in cpu last, with a value an admin left in it:
      // made under another name and renamed, so weir cannot see it before the value is there),
      // with a process inside that receives and sends datagrams over loopback
      for (const d of dirsOf("net-a").slice(1)) mkdir(d);
      mkdir(cpuDir("pre-a"));
      fs.writeFileSync(path.join(cpuDir("pre-a"), "cpu.shares"), "700");
      fs.renameSync(cpuDir("pre-a"), cpuDir("net-a"));
      made[made.indexOf(cpuDir("pre-a"))] = cpuDir("net-a");
      const peerA = await spawnCgroupPeer(dirsOf("net-a").map((d) => path.join(d, "cgroup.procs")));
      peers.push(peerA);
      await waitFor(w, "n-a counted (its throughput in /api/partitions)", async (seen) => {
        const ps = await partitions(w);
        seen(ps);
        return (
          ps.map((p) => p.id).join() === "b-x,n-a" &&
          ps[1]!.throughput !== null &&
          ps[1]!.status === "ok"
        );
      });
      expect(w.err()).toContain(`discover: 1 partition(s) found: n-a (${PARENT}/net-a)`);
      expect(w.err()).toContain(
        "discover: restarting the manager on the partitions found (2 partition(s); it was 1)",
      );
      const na = (await partitions(w))[1]!;
      expect(na.spec).toMatchObject({ kind: "network", importance: 1 });
      // weir's two programs on the v2 twin, one at each hook
      expect(attached("net-a", BPF_CGROUP_INET_INGRESS)).toHaveLength(1);
      expect(attached("net-a", BPF_CGROUP_INET_EGRESS)).toHaveLength(1);
      // weir writes n-a's weight over the value it found
      await waitFor(w, "n-a's weight written to net-a", async (seen) => {
        const shares = read("net-a", "cpu.shares");
        seen(shares);
        return shares !== "700";
      });
      // b-x stays managed after the restart
      expect(read("batch-x", hasIdle ? "cpu.idle" : "cpu.shares")).toBe(hasIdle ? "1" : "2");
      // 2,000 datagrams to the process in net-a (offered) and 500 from it (served), exactly
      expect(await metricPackets(w, "n-a")).toEqual({ in: 0, out: 0 });
      await sendTo(peerA, 2000);
      await sendFrom(peerA, 500);
      const want = { in: 2000, out: 500 };
      await waitFor(w, "n-a's /metrics packets to reach what was sent", async (seen) => {
        const got = await metricPackets(w, "n-a");
        seen(got);
        return near(got, want);
      });
      const api = await apiPackets(w, "n-a");
      expect(near(api, want), `/api/cycles: offered ${api.in}, served ${api.out}`).toBe(true);
      // b-x, outside net-a, counts none of it
      expect(await metricPackets(w, "b-x")).toEqual({ in: 0, out: 0 });

      // 3. a third cgroup past discover.maxPartitions (2): logged as not managed, left alone,
      // and the others keep running (no restart: the partitions are the same)
      const restarts = count(w.err(), "discover: restarting the manager");
      const sharesB = "800";
      for (const d of dirsOf("net-b").slice(1)) mkdir(d);
      mkdir(cpuDir("pre-b"));
      fs.writeFileSync(path.join(cpuDir("pre-b"), "cpu.shares"), sharesB);
      fs.renameSync(cpuDir("pre-b"), cpuDir("net-b"));
      made[made.indexOf(cpuDir("pre-b"))] = cpuDir("net-b");
      const refusal = `discover: ${PARENT}/net-b (discover.partitions[1]) is not managed: discover.maxPartitions (2) are discovered already`;
      await waitFor(w, "net-b's refusal logged", async () => w.err().includes(refusal));
      const refusalLine = w.lines().find((l) => l.msg === refusal)!;
      expect(refusalLine.level).toBe(40); // warn
      expect(await ids(w)).toEqual(["b-x", "n-a"]);
      expect(attached("net-b", BPF_CGROUP_INET_INGRESS)).toEqual([]);
      expect(read("net-b", "cpu.shares")).toBe(sharesB);
      expect(count(w.err(), "discover: restarting the manager")).toBe(restarts);
      await sendTo(peerA, 100);
      await sendFrom(peerA, 40);
      await waitFor(w, "n-a counting on after the refusal", async (seen) => {
        const got = await metricPackets(w, "n-a");
        seen(got);
        return near(got, { in: 2100, out: 540 });
      });
      // the refusal is logged once, not at every scan
      await sleep(1000);
      expect(count(w.err(), refusal)).toBe(1);
      expect(read("batch-x", hasIdle ? "cpu.idle" : "cpu.shares")).toBe(hasIdle ? "1" : "2");

      // 4. batch-x removed (no process in it): b-x is dropped, and net-b, within the limit now,
      // is taken up; no error on the way
      for (const d of dirsOf("batch-x")) {
        fs.rmdirSync(d);
        made.splice(made.indexOf(d), 1);
      }
      await waitFor(w, "b-x dropped and n-b taken up", async (seen) => {
        const ps = await partitions(w);
        seen(ps);
        return ps.map((p) => p.id).join() === "n-a,n-b" && ps.every((p) => p.status === "ok");
      });
      expect(w.err()).toContain(
        `discover: 1 partition(s) no longer found: b-x (${PARENT}/batch-x)`,
      );
      expect(w.err()).toContain(`discover: 1 partition(s) found: n-b (${PARENT}/net-b)`);
      expect(w.err()).toContain(
        `b-x: no partition is on its cgroup ${PARENT}/batch-x now, and the cgroup is gone: the values weir found there are forgotten`,
      );
      expect(attached("net-b", BPF_CGROUP_INET_INGRESS)).toHaveLength(1);
      expect(attached("net-a", BPF_CGROUP_INET_INGRESS)).toHaveLength(1);
      // n-a is counted on by the restarted manager
      const before = await metricPackets(w, "n-a");
      await sendTo(peerA, 50);
      await sendFrom(peerA, 30);
      await waitFor(w, "n-a counted after the restart", async (seen) => {
        const got = await metricPackets(w, "n-a");
        seen({ before, got });
        return near(got, { in: before.in + 50, out: before.out + 30 });
      });
      const errors = () => w.lines().filter((l) => l.level >= 50);
      expect(errors(), w.err()).toEqual([]);

      // 5. SIGTERM: exit 0, the found values back in the cgroups left, no program of weir left
      w.child.kill("SIGTERM");
      expect(await w.exited, w.err()).toBe(0);
      expect(errors(), w.err()).toEqual([]);
      expect(read("net-a", "cpu.shares")).toBe("700");
      expect(read("net-b", "cpu.shares")).toBe(sharesB);
      for (const c of ["net-a", "net-b"]) {
        expect(read(c, "cpu.cfs_quota_us")).toBe("-1");
        if (hasIdle) expect(read(c, "cpu.idle")).toBe("0");
        expect(attached(c, BPF_CGROUP_INET_INGRESS)).toEqual([]);
        expect(attached(c, BPF_CGROUP_INET_EGRESS)).toEqual([]);
      }
      expect(fs.existsSync(path.join(BPF_PIN_ROOT, "n-a"))).toBe(false);
      expect(fs.existsSync(path.join(BPF_PIN_ROOT, "n-b"))).toBe(false);
    });
  },
);
