// Root, real kernel: `weir demo --host-network`, short. Its partitions have no namespace or
// veth: each packet server listens on 127.0.0.1 in its own cgroup and the only counter
// source is eBPF on that cgroup, so traffic weir sees (read from the API while it runs) was
// counted by eBPF. It exits 0 with the same phases and summary as the normal demo and leaves
// nothing: no cgroup, process, state file, bpffs pin (the cgroups are gone, and with them
// any program attached to them).
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { BPF_PIN_ROOT } from "../../src/sensors/source-bpf.ts";
import { taggedPids } from "./leftovers.ts";
import { freePort } from "./wait.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const PREFIX = "weirdemoh";
const canRun =
  process.getuid?.() === 0 && fs.existsSync("/sys/fs/cgroup/unified/cgroup.controllers");

interface Summary {
  mode: string;
  hostNetwork?: boolean;
  phases: Array<{
    name: string;
    partitions: Array<{ partition: string; offered: number; served: number }>;
  }>;
}

describe.skipIf(!canRun)("weir demo --host-network (root, e2e)", () => {
  it("runs the scenario on host-network partitions counted by eBPF, exits 0, leaves nothing", async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        path.join(REPO, "bin/weir.js"),
        "demo",
        "--host-network",
        "--duration",
        "8",
        "--partitions",
        "2",
        "--port",
        String(port),
        "--json",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    // while it runs: the partitions' spec says bpf, and offered/served packets per second
    // come from it (no other counter source is configured for them)
    let seenPps = 0;
    let sources = "";
    const poll = setInterval(async () => {
      try {
        const body = await (await fetch(`http://127.0.0.1:${port}/api/partitions`)).json();
        for (const p of body.partitions as Array<{
          id: string;
          throughput: { offeredPacketsPerSec: number; source: string } | null;
        }>)
          if (p.id === "p1" && p.throughput) {
            seenPps = Math.max(seenPps, p.throughput.offeredPacketsPerSec);
            sources = p.throughput.source;
          }
      } catch {
        // not up yet, or already gone
      }
    }, 500);
    const code = await exited;
    clearInterval(poll);
    expect(code, err).toBe(0);
    const s = JSON.parse(out) as Summary;
    expect(s.mode).toBe("real");
    expect(s.hostNetwork).toBe(true);
    expect(s.phases.map((p) => p.name)).toEqual(["p1 hot", "p2 hot", "all moderate"]);
    for (const ph of s.phases)
      for (const p of ph.partitions) {
        expect(p.offered, `${ph.name} ${p.partition}`).toBeGreaterThan(0);
        expect(p.served, `${ph.name} ${p.partition}`).toBeGreaterThan(0);
      }
    // p1 gets at least the low rate (250/s) all along: counted in the kernel by eBPF
    expect(seenPps).toBeGreaterThan(50);
    expect(sources).toBe("host");
    // nothing left: cgroups in every hierarchy, processes, state file, pins
    for (const h of ["cpu", "cpuacct", "unified"])
      expect(fs.existsSync(path.join("/sys/fs/cgroup", h, PREFIX)), h).toBe(false);
    expect(taggedPids(PREFIX)).toEqual([]);
    expect(fs.existsSync(`/run/weir/testbed-${PREFIX}.json`)).toBe(false);
    expect(fs.existsSync(BPF_PIN_ROOT)).toBe(false);
  }, 120_000);
});
