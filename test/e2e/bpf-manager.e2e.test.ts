// Root, real kernel: two partitions on the host network (no namespace, no interface of their
// own) counted by eBPF (`packets: bpf`). Processes in their cgroups send and receive exact
// numbers of UDP datagrams and TCP segments over loopback; weir's counts of packets and of
// bytes (IP packet length: 92 per 64-byte datagram, TCP segments with their headers) through
// the API (/api/cycles: rate × window summed) and /metrics (which promtool accepts) equal them
// exactly, a neighbour's traffic
// is not counted, nothing of weir stays attached or pinned after SIGTERM, and with `pin: true`
// the kernel keeps counting across a restart: the pinned counts equal everything sent, none
// lost or doubled. Cgroups are weirt-<pid>-bpfm/{a,b} (v1 cpu, cpuacct and the unified v2
// tree); every process here is started here and killed by its pid.
import { type ChildProcess, execFileSync } from "node:child_process";
import dgram from "node:dgram";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { attachedProgramIds } from "../../src/bpf/objects.ts";
import { BPF_CGROUP_INET_EGRESS, BPF_CGROUP_INET_INGRESS } from "../../src/bpf/syscall.ts";
import { BPF_PIN_ROOT } from "../../src/sensors/source-bpf.ts";
import { counterSource } from "../../src/sensors/sources.ts";
import { defaultRoots } from "../../src/sensors/types.ts";
import { DATAGRAM_BYTES, promtool, tcpBytes, tcpSegments } from "./bpf-bytes.ts";
import { type CgroupPeer, rmdirCgroup, sendToPeer, spawnCgroupPeer, until } from "./cgroup-peer.ts";
import { freePort } from "./wait.ts";
import { spawnWeirRun } from "./weir-run.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const ROOT = "/sys/fs/cgroup";
const PARENT = `weirt-${process.pid}-bpfm`;
const HIERARCHIES = ["cpu", "cpuacct", "unified"].map((h) => path.join(ROOT, h));
const canRun =
  process.getuid?.() === 0 &&
  fs.existsSync(path.join(ROOT, "cpu/cpu.cfs_quota_us")) &&
  fs.existsSync(path.join(ROOT, "unified/cgroup.controllers"));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "weir-e2e-bpf-"));
const children: ChildProcess[] = [];
const peers: Record<"a" | "b", CgroupPeer | null> = { a: null, b: null };
let sink: dgram.Socket;
let sender: dgram.Socket;
let server: net.Server;
let sinkGot = 0;
let mountedBpffs = false;
const dirsOf = (p: string) => HIERARCHIES.map((h) => path.join(h, PARENT, p));
const unifiedOf = (p: string) => path.join(ROOT, "unified", PARENT, p);

function startWeir(cfg: string, port: number) {
  const { child, exited, err } = spawnWeirRun(cfg, children);
  const get = async (route: string) => (await fetch(`http://127.0.0.1:${port}${route}`)).text();
  return {
    child,
    err,
    get,
    async ready() {
      await until("weir's first cycles", async () => {
        try {
          const cycles = JSON.parse(await get("/api/cycles?limit=5"));
          return cycles.cycles.length >= 2;
        } catch {
          return false;
        }
      });
    },
    async stop() {
      child.kill("SIGTERM");
      return exited;
    },
  };
}

function writeConfig(port: number, pinA: boolean): string {
  const file = path.join(tmp, `weir-${pinA}.yaml`);
  const bpfA = pinA ? "{ bpf: { pin: true } }" : "bpf";
  fs.writeFileSync(
    file,
    `capacity: { cpus: 2 }
intervalMs: 100
api: { listen: "127.0.0.1:${port}" }
partitions:
  - { name: a, cgroup: ${PARENT}/a, packets: ${bpfA} }
  - { name: b, cgroup: ${PARENT}/b, packets: { bpf: { offered: ingress, served: egress } } }
`,
  );
  return file;
}

type Totals = Record<string, { in: number; out: number }>;

/**
 * Packets (offered = in, served = out) and bytes (in = ingress, out = egress) per partition,
 * summed over every cycle's rate × window (the API's cycle records).
 */
async function apiTotals(
  w: ReturnType<typeof startWeir>,
): Promise<{ packets: Totals; bytes: Totals }> {
  const body = JSON.parse(await w.get("/api/cycles?limit=600"));
  const records: Array<{
    partitions: Array<{
      id: string;
      throughput: null | {
        windowMs: number;
        offeredPacketsPerSec: number;
        servedPacketsPerSec: number;
        ingressBytesPerSec?: number;
        egressBytesPerSec?: number;
      };
    }>;
  }> = body.cycles;
  const zero = (): Totals => ({ a: { in: 0, out: 0 }, b: { in: 0, out: 0 } });
  const packets = zero();
  const bytes = zero();
  for (const r of records)
    for (const p of r.partitions) {
      const t = p.throughput;
      if (!t || !packets[p.id]) continue;
      const sec = t.windowMs / 1000;
      packets[p.id]!.in += t.offeredPacketsPerSec * sec;
      packets[p.id]!.out += t.servedPacketsPerSec * sec;
      bytes[p.id]!.in += (t.ingressBytesPerSec ?? Number.NaN) * sec;
      bytes[p.id]!.out += (t.egressBytesPerSec ?? Number.NaN) * sec;
    }
  return { packets, bytes };
}

/** The bytes series of /metrics (weir_partition_network_bytes_total). */
async function metricBytes(w: ReturnType<typeof startWeir>): Promise<Totals> {
  const text = await w.get("/metrics");
  const v = (p: string, d: string) => {
    const m = new RegExp(
      `^weir_partition_network_bytes_total\\{partition="${p}",direction="${d}"\\} (\\S+)$`,
      "m",
    ).exec(text);
    return m ? Number(m[1]) : Number.NaN;
  };
  return {
    a: { in: v("a", "ingress"), out: v("a", "egress") },
    b: { in: v("b", "ingress"), out: v("b", "egress") },
  };
}

async function metricTotals(w: ReturnType<typeof startWeir>) {
  const text = await w.get("/metrics");
  const v = (p: string, d: string) => {
    const m = new RegExp(
      `^weir_partition_packets_total\\{partition="${p}",direction="${d}"\\} (\\S+)$`,
      "m",
    ).exec(text);
    return m ? Number(m[1]) : Number.NaN;
  };
  return {
    a: { in: v("a", "in"), out: v("a", "out") },
    b: { in: v("b", "in"), out: v("b", "out") },
  };
}

const expectExact = (
  got: Record<string, { in: number; out: number }>,
  want: Record<string, { in: number; out: number }>,
) => {
  for (const p of Object.keys(want)) {
    expect(
      Math.abs(got[p]!.in - want[p]!.in),
      `${p} in: ${got[p]!.in} vs ${want[p]!.in}`,
    ).toBeLessThan(1e-6);
    expect(
      Math.abs(got[p]!.out - want[p]!.out),
      `${p} out: ${got[p]!.out} vs ${want[p]!.out}`,
    ).toBeLessThan(1e-6);
  }
};

/** Until weir's /metrics counts equal `want` (5 s at most; its cycles run late on a busy host). */
async function counted(w: ReturnType<typeof startWeir>, want: Totals): Promise<void> {
  const near = (x: number, y: number) => Math.abs(x - y) < 1e-6;
  const same = (got: Totals) =>
    Object.keys(want).every(
      (p) => near(got[p]!.in, want[p]!.in) && near(got[p]!.out, want[p]!.out),
    );
  await until("weir's counts to reach what was sent", async () =>
    same(await metricTotals(w)),
  ).catch(() => {});
}

/** Datagrams from the test (outside every partition) to a peer, each received. */
const sendTo = (peer: CgroupPeer, n: number): Promise<void> => sendToPeer(sender, peer, n);
/** Datagrams from a peer to the test's sink, each received (25 at a time). */
async function sendFrom(peer: CgroupPeer, n: number, to?: CgroupPeer): Promise<void> {
  for (let left = n; left > 0; left -= 25) {
    const k = Math.min(25, left);
    const before = to ? await to.got() : sinkGot;
    await peer.send(k, to ? to.udpPort : sink.address().port);
    await until(`${k} datagrams from peer ${peer.pid}`, async () =>
      to ? (await to.got()) === before + k : sinkGot === before + k,
    );
  }
}

const nothingAttached = (p: string) => {
  expect(attachedProgramIds(unifiedOf(p), BPF_CGROUP_INET_INGRESS)).toEqual([]);
  expect(attachedProgramIds(unifiedOf(p), BPF_CGROUP_INET_EGRESS)).toEqual([]);
};

describe.skipIf(!canRun)("weir run counts host-network partitions with eBPF (root, e2e)", () => {
  beforeAll(async () => {
    for (const h of HIERARCHIES) fs.mkdirSync(path.join(h, PARENT));
    for (const p of ["a", "b"] as const) {
      for (const d of dirsOf(p)) fs.mkdirSync(d);
      peers[p] = await spawnCgroupPeer(dirsOf(p).map((d) => path.join(d, "cgroup.procs")));
    }
    sink = dgram.createSocket("udp4");
    sink.on("message", () => {
      sinkGot++;
    });
    await new Promise<void>((r) => sink.bind(0, "127.0.0.1", () => r()));
    sender = dgram.createSocket("udp4");
    await new Promise<void>((r) => sender.bind(0, "127.0.0.1", () => r()));
    // a TCP server outside the partitions that answers each byte with one byte
    server = net.createServer((c) => {
      c.setNoDelay(true);
      c.on("data", () => c.write("r"));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    execFileSync("npm", ["run", "build"], { cwd: REPO, stdio: "ignore" });
  });

  // a failed test's weir is stopped as weir is meant to be (SIGTERM detaches its programs)
  afterEach(async () => {
    for (const c of children)
      if (c.exitCode === null && c.signalCode === null) {
        const exited = new Promise((r) => c.once("exit", r));
        c.kill("SIGTERM");
        await exited;
      }
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    for (const p of ["a", "b"] as const) await peers[p]?.kill();
    sink?.close();
    sender?.close();
    server?.close();
    // a pinned leftover (a failed run) is taken up and removed the documented way: pin: false
    for (const p of ["a", "b"])
      if (fs.existsSync(path.join(BPF_PIN_ROOT, p)) && fs.existsSync(unifiedOf(p)))
        counterSource("bpf")
          .open({
            partition: p,
            spec: { cgroup: `${PARENT}/${p}`, interfaces: [] },
            roots: defaultRoots,
            options: { offered: "ingress", served: "egress", pin: false },
          })
          .close();
    if (mountedBpffs) execFileSync("umount", ["/sys/fs/bpf"]);
    for (const p of ["a", "b"]) for (const d of dirsOf(p)) await rmdirCgroup(d);
    for (const h of HIERARCHIES) await rmdirCgroup(path.join(h, PARENT));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("counts exact UDP datagrams and TCP segments per partition, via the API and /metrics; detaches at SIGTERM", async () => {
    const a = peers.a!;
    const b = peers.b!;
    const port = await freePort();
    const w = startWeir(writeConfig(port, false), port);
    await w.ready();
    // UDP: from outside to each, from each to outside, and a -> b (a's egress, b's ingress)
    await sendTo(a, 300);
    await sendFrom(a, 200);
    await sendTo(b, 70);
    await sendFrom(b, 50);
    await sendFrom(a, 40, b);
    // the neighbour's traffic (the test's own sockets, outside both) is not anyone's
    await new Promise<void>((r) =>
      sender.send(Buffer.alloc(8), sink.address().port, "127.0.0.1", () => r()),
    );
    // TCP: 25 request/reply exchanges from a's process, the connection kept open; its
    // segments (SYN, data, ACKs) as the kernel counted them on that socket
    const localPort = await a.tcp((server.address() as net.AddressInfo).port, 25);
    let segs = tcpSegments(localPort);
    await until("the TCP socket to go quiet (delayed ACKs sent)", async () => {
      await new Promise((r) => setTimeout(r, 300));
      const now = tcpSegments(localPort);
      const quiet = now.segsIn === segs.segsIn && now.segsOut === segs.segsOut;
      segs = now;
      return quiet;
    });
    expect(segs.segsOut).toBeGreaterThanOrEqual(26); // SYN + 25 requests at least
    expect(segs.bytesOut).toBe(25); // 25 one-byte requests
    expect(segs.bytesIn).toBe(25); // and their one-byte replies
    const want = {
      a: { in: 300 + segs.segsIn, out: 200 + 40 + segs.segsOut },
      b: { in: 70 + 40, out: 50 },
    };
    const D = DATAGRAM_BYTES;
    const wantBytes = {
      a: {
        in: 300 * D + tcpBytes(segs.segsIn, segs.bytesIn),
        out: (200 + 40) * D + tcpBytes(segs.segsOut, segs.bytesOut),
      },
      b: { in: (70 + 40) * D, out: 50 * D },
    };
    await counted(w, want);
    expectExact(await metricTotals(w), want);
    const api = await apiTotals(w);
    expectExact(api.packets, want);
    expectExact(api.bytes, wantBytes);
    expectExact(await metricBytes(w), wantBytes);
    expect(promtool(await w.get("/metrics"))).toBe("");
    expect(await w.stop(), w.err()).toBe(0);
    // SIGTERM: weir's programs are detached from both cgroups, nothing pinned
    nothingAttached("a");
    nothingAttached("b");
    expect(fs.existsSync(path.join(BPF_PIN_ROOT, "a"))).toBe(false);
    await a.closeTcp();
  });

  it("with pin: true the kernel counts on while weir restarts: none lost, none doubled", async () => {
    const isBpffs = () =>
      execFileSync("stat", ["-f", "-c", "%T", "/sys/fs/bpf"], { encoding: "utf8" }).trim() ===
      "bpf_fs";
    if (!isBpffs()) {
      execFileSync("mount", ["-t", "bpf", "bpf", "/sys/fs/bpf"]);
      mountedBpffs = true;
    }
    const a = peers.a!;
    const port = await freePort();
    const cfg = writeConfig(port, true);
    const first = startWeir(cfg, port);
    await first.ready();
    await sendTo(a, 100);
    await sendFrom(a, 60);
    await counted(first, { a: { in: 100, out: 60 } });
    expectExact({ a: (await metricTotals(first)).a }, { a: { in: 100, out: 60 } });
    expect(await first.stop(), first.err()).toBe(0);
    // pinned and still attached while weir is away (b, unpinned, is detached)
    expect(fs.readdirSync(path.join(BPF_PIN_ROOT, "a")).sort()).toEqual([
      "attached",
      "counters",
      "egress",
      "ingress",
    ]);
    expect(attachedProgramIds(unifiedOf("a"), BPF_CGROUP_INET_INGRESS)).toHaveLength(1);
    nothingAttached("b");
    await sendTo(a, 30); // while weir is down
    await sendFrom(a, 20);
    const second = startWeir(cfg, port);
    await second.ready();
    await sendTo(a, 7);
    await sendFrom(a, 5);
    await counted(second, { a: { in: 7, out: 5 } });
    // the restarted weir's own totals start from its first read (the gap is inside it) ...
    expectExact({ a: (await metricTotals(second)).a }, { a: { in: 7, out: 5 } });
    // ... and the kernel's pinned counts are everything since the first start, exactly once
    const again = counterSource("bpf").open({
      partition: "a",
      spec: { cgroup: `${PARENT}/a`, interfaces: [] },
      roots: defaultRoots,
      options: { offered: "ingress", served: "egress", pin: true },
    });
    expect(again.read()).toEqual({
      offeredPackets: 100 + 30 + 7,
      servedPackets: 60 + 20 + 5,
      droppedPackets: 0,
      ingressBytes: (100 + 30 + 7) * DATAGRAM_BYTES,
      egressBytes: (60 + 20 + 5) * DATAGRAM_BYTES,
    });
    again.close();
    expect(await second.stop(), second.err()).toBe(0);
    // the partition's cgroup changed between runs: its pinned programs follow it, taken off the
    // old cgroup, and the log says so
    const moved = path.join(tmp, "weir-moved.yaml");
    fs.writeFileSync(
      moved,
      `capacity: { cpus: 2 }
intervalMs: 100
api: { listen: "127.0.0.1:${port}" }
partitions:
  - { name: a, cgroup: ${PARENT}/b, packets: { bpf: { pin: true } } }
`,
    );
    const fourth = startWeir(moved, port);
    await fourth.ready();
    expect(attachedProgramIds(unifiedOf("b"), BPF_CGROUP_INET_INGRESS)).toHaveLength(1);
    nothingAttached("a");
    expect(await fourth.stop(), fourth.err()).toBe(0);
    expect(fourth.err()).toContain(
      `their programs were taken off ${unifiedOf("a")}, the cgroup it had before`,
    );
    // the documented clean-up: run once with pin: false; it takes the pins up and removes them
    const third = startWeir(writeConfig(port, false), port);
    await third.ready();
    expect(await third.stop(), third.err()).toBe(0);
    expect(fs.existsSync(path.join(BPF_PIN_ROOT, "a"))).toBe(false);
    nothingAttached("a");
    nothingAttached("b");
  });
});
