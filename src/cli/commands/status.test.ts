import { spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { MemoryView } from "../../api/memory-view.ts";
import { sampleRecord, sampleSpecs } from "../../api/sample-records.ts";
import { partitionsSnapshot } from "../../api/snapshot.ts";
import { formatStatus } from "./status.ts";

const url = "http://127.0.0.1:9470";

describe("formatStatus", () => {
  it("prints one row per partition with traffic, CPU, allocation, bounds, velocity and why", () => {
    const view = new MemoryView({ specs: sampleSpecs });
    view.publish(sampleRecord(42, 4200));
    const text = formatStatus(partitionsSnapshot(view), { url, width: 200 });
    const lines = text.split("\n");
    // 800m + 360m + 840m entitled of 2000m
    expect(lines[0]).toBe(`weir at ${url}  cycle 42  capacity 2,000m  entitled 2,000m  applying`);
    expect(lines[2]).toMatch(
      /^PARTITION\s+OFFERED\/s\s+SERVED\/s\s+DROPS\/s\s+CPU USED\s+ENTITLED\s+EXPRESSED AS\s+MIN-MAX\s+VELOCITY\s+STATUS\s+WHY$/,
    );
    const web = lines[3]!.split(/\s{2,}/);
    expect(web.slice(0, 10)).toEqual([
      "web",
      "3,000",
      "2,250",
      "750",
      "500m",
      "800m",
      "weight 4000",
      "100m-1,500m",
      "4,500",
      "ok",
    ]);
    expect(web[10]).toMatch(/^throttled 60% and dropping 750 pkt\/s/);
    // dns has a max below capacity: a cap with its reason
    expect(lines[4]!.split(/\s{2,}/)[6]).toBe("weight 1800, cap 500m (max)");
    const batch = lines[5]!.split(/\s{2,}/);
    // batch has no smoothed velocity (null) -> falls back to the raw 0
    expect(batch.slice(0, 10)).toEqual([
      "batch",
      "0",
      "0",
      "0",
      "700m",
      "840m",
      "idle class",
      "0m-2,000m",
      "0",
      "ok",
    ]);
  });

  it("says how long a partition's backend has not applied what was submitted", () => {
    const view = new MemoryView({ specs: sampleSpecs });
    view.publish(sampleRecord(42, 4200));
    const held = { capCpuMillis: Number.POSITIVE_INFINITY, weight: 100 };
    Object.assign(view, {
      allocations: () => ({
        web: {
          desired: { ...held, weight: 4000 },
          applied: held,
          inForce: false,
          differsSinceMs: 3000,
        },
        dns: { desired: held, applied: held, inForce: true, differsSinceMs: null },
      }),
    });
    const lines = formatStatus(partitionsSnapshot(view), { url, width: 200 }).split("\n");
    expect(lines[3]!.split(/\s{2,}/)[9]).toBe("ok, pending 1.2s");
    expect(lines[4]!.split(/\s{2,}/)[9]).toBe("ok");
  });

  it("fits the why into the terminal width and marks a paused manager and errors", () => {
    const view = new MemoryView({ specs: sampleSpecs });
    const rec = sampleRecord(1, 100);
    rec.partitions[1]!.status = "gone";
    rec.partitions[1]!.error = {
      code: "WEIR_CGROUP_GONE",
      message: "cgroup vanished",
      retryable: false,
    };
    view.publish(rec);
    view.setPaused(true);
    const text = formatStatus(partitionsSnapshot(view), { url, width: 170 });
    const lines = text.split("\n");
    expect(lines[0]).toContain("PAUSED (not applying)");
    for (const line of lines.slice(2)) expect(line.length).toBeLessThanOrEqual(170);
    expect(lines[3]).toMatch(/…$/);
    expect(lines[4]).toContain("gone:WEIR_CGROUP_GONE");
  });

  it("says so when no cycle has run yet", () => {
    const view = new MemoryView({ specs: sampleSpecs });
    const text = formatStatus(partitionsSnapshot(view), { url, width: 100 });
    expect(text.split("\n")[0]).toContain("no cycle yet");
    expect(text).toMatch(/^web\s+-\s+-\s+-\s+-\s+-\s+-\s+100m-1,500m\s+-\s+unknown$/m);
  });

  it("says how placement is configured and, where a partition is placed, its CPUs", () => {
    const view = new MemoryView({ specs: sampleSpecs });
    view.publish(sampleRecord(42, 4200));
    const snap = partitionsSnapshot(view);
    const placed = {
      ...snap,
      placement: { mode: "auto" as const, inForce: true, why: "CPUs share no last-level cache" },
      partitions: snap.partitions.map((p, i) =>
        i === 0 ? { ...p, placement: { cpus: [1], why: "on CPU 1", file: "/x/cpuset.cpus" } } : p,
      ),
    };
    const lines = formatStatus(placed, { url, width: 220 }).split("\n");
    expect(lines[0]).toMatch(/ {2}applying {2}placement auto$/);
    expect(lines[3]!.split(/\s{2,}/)[6]).toBe("weight 4000, on CPU 1");
    const off = { ...snap, placement: { mode: "auto" as const, inForce: false, why: "one CPU" } };
    expect(formatStatus(off, { url, width: 200 }).split("\n")[0]).toMatch(
      /placement auto \(not in force\)$/,
    );
  });
});

describe("weir status against a server that closes without answering", () => {
  it("says so and exits 1 (node ended it with 13 and no word)", async () => {
    // each connection closed at once: fetch waits on nothing, and AbortSignal.timeout's timer
    // did not keep node running
    const server = net.createServer((s) => s.end());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const child = spawn(
        process.execPath,
        [
          path.resolve(import.meta.dirname, "../../../bin/weir.js"),
          "status",
          "--url",
          `http://127.0.0.1:${port}`,
        ],
        { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, WEIR_FROM_SOURCE: "1" } },
      );
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      const code = await new Promise<number | null>((r) => child.on("exit", r));
      expect(code, stderr).toBe(1);
      // undici either waits (then the timer ends it) or sees the close, depending on when the
      // close reaches it: a clear line either way
      expect(stderr).toMatch(
        new RegExp(
          `^weir status: cannot read http://127\\.0\\.0\\.1:${port}: (no answer from .* in 3000 ms|fetch failed)`,
        ),
      );
    } finally {
      server.close();
    }
  }, 30_000);
});
