// Root, real kernel: the eBPF counter source's errors name the partition, the cause and the
// fix — the verifier's refusal with its log, a process without root/CAP_BPF (run as nobody
// through setpriv), a missing cgroup v2 directory — and under `weir run` a partition whose
// cgroup is missing is reported while its neighbour goes on being counted.
import { type ChildProcess, execFileSync } from "node:child_process";
import dgram from "node:dgram";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { exit } from "../../src/bpf/insn.ts";
import { loadCgroupSkbProgram } from "../../src/bpf/objects.ts";
import { BPF_CGROUP_INET_EGRESS } from "../../src/bpf/syscall.ts";
import { isWeirError } from "../../src/core/errors.ts";
import { counterSource } from "../../src/sensors/sources.ts";
import { defaultRoots } from "../../src/sensors/types.ts";
import { rmdirCgroup, spawnCgroupPeer, until } from "./cgroup-peer.ts";
import { spawnWeirRun } from "./weir-run.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const ROOT = "/sys/fs/cgroup";
const PARENT = `weirt-${process.pid}-bpferr`;
const HIERARCHIES = ["cpu", "cpuacct", "unified"].map((h) => path.join(ROOT, h));
const canRun =
  process.getuid?.() === 0 &&
  fs.existsSync(path.join(ROOT, "cpu/cpu.cfs_quota_us")) &&
  fs.existsSync(path.join(ROOT, "unified/cgroup.controllers"));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "weir-e2e-bpferr-"));
const children: ChildProcess[] = [];

function errorOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (isWeirError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error("expected an error");
}

describe.skipIf(!canRun)("eBPF counter source errors (root, e2e)", () => {
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    for (const h of HIERARCHIES) {
      await rmdirCgroup(path.join(h, PARENT, "ok"));
      await rmdirCgroup(path.join(h, PARENT));
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("a program the verifier refuses: BPF_REJECTED with the partition and the verifier's log", () => {
    // `exit` with r0 never written: the verifier must refuse it ("R0 !read_ok")
    const e = errorOf(() =>
      loadCgroupSkbProgram({ partition: "web" }, [exit()], BPF_CGROUP_INET_EGRESS),
    );
    expect(e.code).toBe("WEIR_BPF_REJECTED");
    expect(e.message).toMatch(
      /^partition web: the kernel's verifier rejected weir's egress counting program \(EACCES\)/,
    );
    expect(e.message).toMatch(/Verifier log:\n[\s\S]*R0 !read_ok/);
  });

  it("a cgroup v2 directory that does not exist: CGROUP_GONE with the path and how to make it", () => {
    const e = errorOf(() =>
      counterSource("bpf").open({
        partition: "web",
        spec: { cgroup: `${PARENT}/missing`, interfaces: [] },
        roots: defaultRoots,
        options: undefined,
      }),
    );
    expect(e.code).toBe("WEIR_CGROUP_GONE");
    expect(e.message).toContain(
      `partition web: its cgroup v2 directory /sys/fs/cgroup/unified/${PARENT}/missing cannot be opened (ENOENT)`,
    );
    expect(e.message).toContain(`mkdir /sys/fs/cgroup/unified/${PARENT}/missing`);
  });

  it("without root or CAP_BPF: BPF_UNAVAILABLE saying which capabilities to give", () => {
    const script = path.join(tmp, "nobody.ts");
    fs.writeFileSync(
      script,
      `import { counterSource } from ${JSON.stringify(path.join(REPO, "src/sensors/sources.ts"))};
import { defaultRoots } from ${JSON.stringify(path.join(REPO, "src/sensors/types.ts"))};
try {
  counterSource("bpf").open({ partition: "web", spec: { cgroup: "", interfaces: [] }, roots: defaultRoots, options: undefined });
  console.log(JSON.stringify({ code: "opened" }));
} catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
`,
    );
    fs.chmodSync(tmp, 0o755);
    fs.chmodSync(script, 0o644);
    const out = execFileSync(
      "setpriv",
      [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "env",
        `HOME=${tmp}`,
        path.join(REPO, "node_modules/.bin/tsx"),
        script,
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    const r = JSON.parse(out.trim().split("\n").pop()!);
    expect(r.code).toBe("WEIR_BPF_UNAVAILABLE");
    expect(r.message).toBe(
      "partition web: creating the counters map failed (EPERM): run weir as root, or give it CAP_BPF and CAP_NET_ADMIN (systemd: AmbientCapabilities=CAP_BPF CAP_NET_ADMIN)",
    );
  });

  it("under weir run, a partition whose v2 cgroup is missing is reported; its neighbour is still counted", async () => {
    for (const h of HIERARCHIES) fs.mkdirSync(path.join(h, PARENT, "ok"), { recursive: true });
    // the missing partition has its v1 cgroups (weir can write its CPU) but no v2 directory
    for (const h of HIERARCHIES.slice(0, 2)) fs.mkdirSync(path.join(h, PARENT, "nov2"));
    const peer = await spawnCgroupPeer(
      HIERARCHIES.map((h) => path.join(h, PARENT, "ok", "cgroup.procs")),
    );
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise((r) => srv.close(r));
    const cfg = path.join(tmp, "weir.yaml");
    fs.writeFileSync(
      cfg,
      `capacity: { cpus: 2 }
api: { listen: "127.0.0.1:${port}" }
partitions:
  - { name: ok, cgroup: ${PARENT}/ok, packets: bpf }
  - { name: nov2, cgroup: ${PARENT}/nov2, packets: bpf }
`,
    );
    const { child, exited, err: log } = spawnWeirRun(cfg, children);
    const get = async (route: string) =>
      JSON.parse(await (await fetch(`http://127.0.0.1:${port}${route}`)).text());
    try {
      await until("weir's first cycles", async () => {
        try {
          return (await get("/api/cycles?limit=5")).cycles.length >= 2;
        } catch {
          return false;
        }
      });
      const sink = dgram.createSocket("udp4");
      let got = 0;
      sink.on("message", () => {
        got++;
      });
      await new Promise<void>((r) => sink.bind(0, "127.0.0.1", () => r()));
      await peer.send(20, sink.address().port);
      await until("20 datagrams", () => got === 20);
      sink.close();
      await new Promise((r) => setTimeout(r, 400));
      const cycles: Array<{
        partitions: Array<{
          id: string;
          status: string;
          error?: { code: string; message: string };
          throughput: null | { windowMs: number; servedPacketsPerSec: number };
        }>;
      }> = (await get("/api/cycles?limit=600")).cycles;
      let served = 0;
      for (const c of cycles)
        for (const p of c.partitions)
          if (p.id === "ok" && p.throughput)
            served += (p.throughput.servedPacketsPerSec * p.throughput.windowMs) / 1000;
      expect(Math.abs(served - 20)).toBeLessThan(1e-6);
      const last = cycles.at(-1)!.partitions;
      expect(last.find((p) => p.id === "ok")?.status).toBe("ok");
      const nov2 = last.find((p) => p.id === "nov2")!;
      expect(nov2.status).toBe("gone");
      expect(nov2.error?.code).toBe("WEIR_CGROUP_GONE");
      expect(nov2.error?.message).toContain(
        `partition nov2: its cgroup v2 directory /sys/fs/cgroup/unified/${PARENT}/nov2 cannot be opened`,
      );
    } finally {
      child.kill("SIGTERM");
      expect(await exited, log()).toBe(0);
      await peer.kill();
      for (const h of HIERARCHIES.slice(0, 2)) await rmdirCgroup(path.join(h, PARENT, "nov2"));
    }
  });
});
