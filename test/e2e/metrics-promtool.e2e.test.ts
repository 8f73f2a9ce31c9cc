// Real-host test of the API over a socket (needs root, cgroup v1 cpu + cpuacct as on this
// host, and Debian's `prometheus` package for promtool): a running Manager built from a config
// exactly as `weir run --dry-run` builds it (weir's policy, the real sensors, the dry-run
// recording actuator), on a real v1 cgroup holding a real UDP echo server, with real packets
// on loopback counted from /sys/class/net/lo. The API is served on 127.0.0.1, /metrics is
// scraped over HTTP and checked by `promtool check metrics`; /api/events and `weir status`
// are read over the same socket. Everything made here is named weirt-<pid>-... and removed.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import dgram from "node:dgram";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApi } from "../../src/api/app.ts";
import { createMetrics, type WeirMetrics } from "../../src/api/metrics.ts";
import { type RunningApi, serveApi } from "../../src/api/server.ts";
import { parseConfig } from "../../src/manager/config.ts";
import type { Manager } from "../../src/manager/manager.ts";
import { buildManager } from "../../src/manager/wiring.ts";

const run = promisify(execFile);
const CGROOT = "/sys/fs/cgroup";
const PROMTOOL = "/usr/bin/promtool";
const canRun =
  process.getuid?.() === 0 &&
  fs.existsSync(path.join(CGROOT, "cpu/cpu.cfs_quota_us")) &&
  fs.existsSync(path.join(CGROOT, "cpuacct/cpuacct.usage"));

const ECHO = `weirt-${process.pid}-echo`;
const BATCH = `weirt-${process.pid}-batch`;
const cgDirs = [ECHO, BATCH].flatMap((n) => [
  path.join(CGROOT, "cpu", n),
  path.join(CGROOT, "cpuacct", n),
]);
const TOKEN = "e2e-token-0123456789abcdef";
const REPO = path.resolve(import.meta.dirname, "../..");

// A UDP echo server that spends ~0.2 ms of CPU per request (SHA-256 rounds), so CPU follows packets.
const ECHO_SERVER = `
const dgram = require("node:dgram");
const { createHash } = require("node:crypto");
const s = dgram.createSocket("udp4");
s.on("message", (msg, rinfo) => {
  let h = msg;
  for (let i = 0; i < 200; i++) h = createHash("sha256").update(h).digest();
  s.send(h.subarray(0, 8), rinfo.port, rinfo.address);
});
s.bind(0, "127.0.0.1", () => process.stdout.write("port " + s.address().port + "\\n"));
setTimeout(() => process.exit(0), 120000).unref();
`;

let echo: ChildProcess | null = null;
let manager: Manager | null = null;
let metrics: WeirMetrics | null = null;
let api: RunningApi | null = null;
const stopManager = new AbortController();
let managerDone: Promise<void> = Promise.resolve();
let loadTimer: NodeJS.Timeout | null = null;
let loadSocket: dgram.Socket | null = null;
let sent = 0;

/** Open-loop UDP load: `perTick` datagrams every 10 ms, at most `maxPackets` in all. */
function startLoad(port: number, perTick: number, maxPackets: number): void {
  loadSocket = dgram.createSocket("udp4");
  loadSocket.on("message", () => {});
  const payload = Buffer.alloc(64, 7);
  loadTimer = setInterval(() => {
    for (let i = 0; i < perTick && sent < maxPackets; i++, sent++) {
      loadSocket?.send(payload, port, "127.0.0.1");
    }
    if (sent >= maxPackets && loadTimer) clearInterval(loadTimer);
  }, 10);
}

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Value of one sample line in a Prometheus text exposition. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe.skipIf(!canRun)(
  "API on a real socket over a running manager (root, cgroup v1, promtool)",
  () => {
    beforeAll(async () => {
      for (const d of cgDirs) fs.mkdirSync(d, { recursive: true });
      echo = spawn(process.execPath, ["-e", ECHO_SERVER], { stdio: ["ignore", "pipe", "inherit"] });
      const port = await new Promise<number>((resolve, reject) => {
        echo!.once("error", reject);
        echo!.stdout!.once("data", (b: Buffer) =>
          resolve(Number(/port (\d+)/.exec(String(b))![1])),
        );
      });
      for (const ctl of ["cpu", "cpuacct"]) {
        fs.writeFileSync(path.join(CGROOT, ctl, ECHO, "cgroup.procs"), String(echo.pid));
      }

      const cfg = parseConfig({
        intervalMs: 100,
        capacity: { cpus: 1 },
        api: { listen: "127.0.0.1:0", token: TOKEN },
        partitions: [
          { name: "echo", cgroup: ECHO, interfaces: ["lo"], min: "100m", max: 1, importance: 1 },
          { name: "batch", kind: "batch", cgroup: BATCH, weight: 50, importance: 5 },
        ],
      });
      manager = buildManager(cfg, { dryRun: true }).manager;
      metrics = createMetrics();
      metrics.attach(manager);
      api = await serveApi(createApi({ view: manager, token: TOKEN, registry: metrics.registry }), {
        port: 0,
      });
      managerDone = manager.start(stopManager.signal);
      // ~1500 requests/s for at most 20 s (30,000 packets), stopped in afterAll in any case.
      startLoad(port, 15, 30_000);
    });

    afterAll(async () => {
      if (loadTimer) clearInterval(loadTimer);
      loadSocket?.close();
      stopManager.abort();
      await managerDone;
      manager?.shutdown("keep");
      await api?.close();
      if (echo?.pid && echo.exitCode === null) {
        const exited = new Promise((r) => echo!.once("exit", r));
        echo.kill("SIGKILL");
        await exited;
      }
      for (const d of cgDirs) {
        for (let i = 0; i < 20 && fs.existsSync(d); i++) {
          try {
            fs.rmdirSync(d);
          } catch {
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      }
    });

    it("binds to 127.0.0.1 and is ready after the first cycle", async () => {
      expect(api!.host).toBe("127.0.0.1");
      await waitFor("readyz 200", async () =>
        (await fetch(`${api!.url}/readyz`)).status === 200 ? true : undefined,
      );
    });

    it("a real scrape of /metrics passes promtool check metrics and counts the real packets", async () => {
      // Wait until the echo partition has counted real loopback traffic in a few cycles.
      const text = await waitFor("packets in /metrics", async () => {
        const t = await (await fetch(`${api!.url}/metrics`)).text();
        const packets = sample(t, 'weir_partition_packets_total{partition="echo",direction="in"}');
        return packets !== undefined && packets > 500 ? t : undefined;
      });
      const res = await fetch(`${api!.url}/metrics`);
      expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
      const scrape = await res.text();
      const file = path.join(fs.mkdtempSync(`/tmp/weirt-${process.pid}-scrape-`), "metrics.txt");
      fs.writeFileSync(file, scrape);
      // Missing promtool is a failure, not a skip: CI installs Debian's prometheus package.
      expect(fs.existsSync(PROMTOOL), "promtool missing: apt-get install -y prometheus").toBe(true);
      // promtool reads the exposition on stdin; exit 0 and no complaint means it passed.
      const checked = await run("sh", ["-c", `${PROMTOOL} check metrics < ${file}`]).then(
        (r) => ({ code: 0, out: r.stdout + r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({
          code: e.code,
          out: e.stdout + e.stderr,
        }),
      );
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
      expect(checked.out).toBe("");
      expect(checked.code).toBe(0);

      // The figures are the real ones: loopback packets (lo counts every packet on the host,
      // so at least what this test sent and the echoes), CPU the echo server's cgroup used,
      // cycles timed by the manager.
      expect(
        sample(text, 'weir_partition_packets_total{partition="echo",direction="in"}'),
      ).toBeGreaterThan(500);
      expect(sample(scrape, 'weir_partition_cpu_seconds_total{partition="echo"}')).toBeGreaterThan(
        0,
      );
      // rates need two samples, so packets were counted after at least two timed cycles
      expect(sample(scrape, "weir_cycle_duration_seconds_count")).toBeGreaterThanOrEqual(2);
      expect(
        sample(scrape, 'weir_partition_cpu_allocation_cores{partition="echo"}'),
      ).toBeGreaterThanOrEqual(0.1);
      expect(sample(scrape, "weir_capacity_cpu_cores")).toBe(1);
      // the values the actuator wrote for it, a whole count (0 if it found them already set)
      const writes = sample(scrape, 'weir_partition_cgroup_writes_total{partition="echo"}');
      expect(Number.isInteger(writes)).toBe(true);
      expect(writes).toBeGreaterThanOrEqual(0);
      // the host's idle CPU from this host's /proc/stat, a ratio in base units
      const idle = sample(scrape, "weir_host_cpu_idle_ratio");
      expect(idle).toBeGreaterThanOrEqual(0);
      expect(idle).toBeLessThanOrEqual(1);
      expect(scrape).not.toMatch(/^nodejs_/m);
    });

    it("streams cycle records over SSE from the running manager", async () => {
      const ctl = new AbortController();
      const res = await fetch(`${api!.url}/api/events`, { signal: ctl.signal });
      expect(res.headers.get("content-type")).toBe("text/event-stream");
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      while (!/\n\n/.test(buf.slice(buf.indexOf("data: ")))) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
      }
      ctl.abort();
      const data = /^data: (.*)$/m.exec(buf)![1]!;
      const record = JSON.parse(data);
      expect(record.partitions.map((p: { id: string }) => p.id)).toEqual(["echo", "batch"]);
      expect(record.cycle).toBeGreaterThan(0);
      expect(record.partitions[0].decision.why.length).toBeGreaterThan(0);
      // the host's CPU over the cycle: one CPU per cpuN line of /proc/stat, parts adding up to 1
      const host = record.host;
      expect(host.cpus).toBe(os.cpus().length);
      expect(host.idleFraction + host.busyCores / host.cpus + host.stealFraction).toBeCloseTo(1, 9);
    });

    it("guards mutations with the configured token over HTTP", async () => {
      const no = await fetch(`${api!.url}/api/pause`, { method: "POST" });
      expect(no.status).toBe(401);
      const yes = await fetch(`${api!.url}/api/pause`, {
        method: "POST",
        headers: { Authorization: `Bearer ${TOKEN}` },
      });
      expect(await yes.json()).toEqual({ paused: true });
      expect(manager!.paused()).toBe(true);
      await fetch(`${api!.url}/api/resume`, {
        method: "POST",
        headers: { Authorization: `Bearer ${TOKEN}` },
      });
      expect(manager!.paused()).toBe(false);
    });

    it("`weir status --url` prints the partitions of the running manager", async () => {
      const { stdout } = await run(
        process.execPath,
        [path.join(REPO, "bin/weir.js"), "status", "--url", api!.url],
        {
          cwd: REPO,
          timeout: 60_000,
        },
      );
      const lines = stdout.split("\n");
      expect(lines[0]).toMatch(
        new RegExp(`^weir at ${api!.url.replace(/\./g, "\\.")}  cycle \\d+  capacity 1,000m`),
      );
      expect(lines[2]).toMatch(/^PARTITION\s+OFFERED\/s\s+SERVED\/s/);
      expect(lines.find((l) => l.startsWith("echo "))).toMatch(/^echo\s+[\d,]+\s+[\d,]+\s+/);
      expect(lines.find((l) => l.startsWith("batch "))).toBeDefined();
    });
  },
);
