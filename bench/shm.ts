// Shared-memory slots: how fast an agent can publish into its slot, and how long the manager's
// scan of 10,000 slots takes (changed and unchanged), on real sealed memfds (one page per
// partition) mapped through koffi + mmap, the agents' ends opened through the slot directory
// as an agent opens them. Removes its directory (/dev/shm/weirb-<pid>-shm) at the end.
// `--reps N` (default 5; `--quick`: 2): N timed batches of writes and of verified scans and
// 40 × N scans; each figure is the median of those with their range and count.
import { rmSync } from "node:fs";
import os from "node:os";
import { encodeReport, KeyRing, parseKeyHex, type ReportMessage } from "../src/transport/codec.ts";
import { macKey } from "../src/transport/mac.ts";
import { AgentSlot, ManagerSlots } from "../src/transport/shm.ts";
import { ShmReportSource } from "../src/transport/shm-source.ts";
import {
  type BenchFigure,
  type Benchmark,
  isMain,
  nowNs,
  repeated,
  runStandalone,
} from "./harness.ts";

const SLOTS = 10_000;
const KEY_BYTES = parseKeyHex("5e".repeat(32));
const KEY = macKey(KEY_BYTES);

const message = (i: number, seq: number, now: number): ReportMessage => ({
  partitionIndex: i,
  sequence: seq,
  timestampMs: now,
  rxPackets: seq * 3,
  txPackets: seq * 2,
  droppedPackets: seq,
  cpuUsageNs: seq * 1000,
  nrPeriods: 0,
  nrThrottled: 0,
  throttledNs: 0,
  velocityPacketsPerCpuSec: 4000,
  velocityWindowMs: 100,
});

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
/** CPU time (user + system) of this process since `c0`, in microseconds. */
const cpuUs = (c0: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(c0);
  return d.user + d.system;
};
const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;

export const bench: Benchmark = {
  name: "shm",
  description: "shared-memory slots: agent writer updates/s, manager scan of 10,000 slots",
  async run(ctx) {
    const path = `/dev/shm/weirb-${process.pid}-shm`;
    const reps = ctx.reps ?? (ctx.quick ? 2 : 5);
    const figures: BenchFigure[] = [];
    const notes: string[] = [];
    try {
      const now = Date.now();
      const indexes = Array.from({ length: SLOTS }, (_, i) => i);
      const table = new ManagerSlots({ dir: path, indexes });
      let agents = indexes.map((i) => new AgentSlot({ path, slot: i }));
      const encoded = Array.from({ length: SLOTS }, (_, i) =>
        encodeReport(message(i, 1, now), KEY),
      );
      ctx.progress(0.1, "writer");

      // 1. One agent rewriting its slot with a pre-signed report (seqlock + 136-byte copy).
      const writer = agents[0]!;
      const pre = encoded.slice(0, 64);
      const writeRuns: number[] = [];
      const writeCpuRuns: number[] = [];
      const batch = ctx.quick ? 200_000 : 2_000_000;
      for (let r = 0; r < reps; r++) {
        const c0 = process.cpuUsage();
        const t0 = nowNs();
        for (let k = 0; k < batch; k++) writer.writeReport(pre[k & 63]!);
        writeRuns.push(batch / ((nowNs() - t0) / 1e9));
        writeCpuRuns.push(batch / (cpuUs(c0) / 1e6));
      }
      const writesPerCpuSec = median(writeCpuRuns);
      figures.push({
        name: "writer updates (pre-signed report into own slot), per CPU-second",
        ...repeated(writeCpuRuns, 0),
        unit: "updates/s",
        target: ">= 5,000,000",
        meets: writesPerCpuSec >= 5e6,
      });
      figures.push({
        name: "writer updates (same), per wall-clock second",
        ...repeated(writeRuns, 0),
        unit: "updates/s",
      });

      // 1b. The same including encoding and HMAC-SHA256 of each report (what an agent pays).
      const out = new Uint8Array(136);
      const signRuns: number[] = [];
      const signBatch = ctx.quick ? 5_000 : 50_000;
      let seq = 2;
      for (let r = 0; r < reps; r++) {
        const t0 = nowNs();
        for (let k = 0; k < signBatch; k++)
          writer.writeReport(encodeReport(message(0, seq++, now), KEY, out));
        signRuns.push(signBatch / ((nowNs() - t0) / 1e9));
      }
      figures.push({
        name: "writer updates incl. encode + HMAC-SHA256",
        ...repeated(signRuns, 0),
        unit: "updates/s",
      });
      ctx.progress(0.4, "scan");

      // 2. Full scan with every slot changed since the last scan. The manager verifies each
      //    changed report where it lies, between the two reads of its lock (no copy): `read`
      //    here returns the area untouched, so this is the scan's own cost; the same scan with
      //    a 136-byte copy per slot is what a reader that keeps the bytes pays.
      const runs = 40 * reps;
      const changedScans: number[] = [];
      const copiedScans: number[] = [];
      const unchangedScans: number[] = [];
      let changedCpuUs = 0;
      let visited = 0;
      const inPlace = (_i: number, bytes: Uint8Array, _at: number): Uint8Array => bytes;
      const copy = new Uint8Array(136);
      const copied = (_i: number, bytes: Uint8Array, at: number): Uint8Array => {
        copy.set(bytes.subarray(at, at + 136));
        return copy;
      };
      const commit = (): void => {
        visited++;
      };
      for (let r = 0; r < runs; r++) {
        for (let i = 0; i < SLOTS; i++) agents[i]!.writeReport(encoded[i]!);
        visited = 0;
        const c0 = process.cpuUsage();
        const t0 = nowNs();
        table.scan(inPlace, commit);
        changedScans.push(nowNs() - t0);
        changedCpuUs += cpuUs(c0);
        if (visited !== SLOTS) throw new Error(`scan visited ${visited} of ${SLOTS} changed slots`);
        const t1 = nowNs();
        table.scan(inPlace, commit);
        unchangedScans.push(nowNs() - t1);
        if (visited !== SLOTS) throw new Error("an unchanged slot was visited");
      }
      // Only after: a second `read` makes the scan's call sites polymorphic (the manager's
      // scan always calls the same one).
      for (let r = 0; r < runs; r++) {
        for (let i = 0; i < SLOTS; i++) agents[i]!.writeReport(encoded[i]!);
        visited = 0;
        const t2 = nowNs();
        table.scan(copied, commit);
        copiedScans.push(nowNs() - t2);
        if (visited !== SLOTS) throw new Error("the copying scan missed a changed slot");
      }
      const changedUs = median(changedScans) / 1000;
      figures.push({
        name: "full scan, 10,000 slots none changed (wall, median)",
        ...repeated(unchangedScans, 1, 1e-3),
        unit: "µs",
        target: "<= 200 µs",
        meets: median(unchangedScans) / 1000 <= 200,
      });
      figures.push({
        name: "full scan, 10,000 slots all changed: seqlock reads around an in-place read (wall, median)",
        ...repeated(changedScans, 1, 1e-3),
        unit: "µs",
        target: "<= 200 µs",
        meets: changedUs <= 200,
      });
      figures.push({
        name: "full scan, 10,000 slots all changed (CPU time, mean)",
        value: round(changedCpuUs / runs),
        unit: "µs",
      });
      figures.push({
        name: "full scan, 10,000 slots all changed, copying each report out (wall, median)",
        ...repeated(copiedScans, 1, 1e-3),
        unit: "µs",
      });
      ctx.progress(0.7, "verified scan");

      // 3. What the manager's latest() costs when all 10,000 partitions reported: scan +
      //    verify (HMAC) + bookkeeping.
      table.close();
      for (const a of agents) a.close();
      const keys = new KeyRing(indexes.map((i) => ({ index: i, id: `p${i}`, key: KEY_BYTES })));
      const source = new ShmReportSource({ path, keys, slotCount: SLOTS, maxAgeMs: 600_000 });
      agents = indexes.map((i) => new AgentSlot({ path, slot: i }));
      const verifiedRuns: number[] = [];
      for (let r = 0; r < reps; r++) {
        for (let i = 0; i < SLOTS; i++)
          agents[i]!.writeReport(encodeReport(message(i, 10 + r, now), KEY, out));
        const t0 = nowNs();
        const n = source.latest().size;
        verifiedRuns.push(nowNs() - t0);
        if (n !== SLOTS || source.accepted() !== SLOTS * (r + 1))
          throw new Error(
            `verified scan accepted ${source.accepted()}, expected ${SLOTS * (r + 1)}`,
          );
      }
      figures.push({
        name: "latest() with 10,000 new reports (scan + HMAC verify)",
        ...repeated(verifiedRuns, 2, 1e-6),
        unit: "ms",
      });
      source.close();
      for (const a of agents) a.close();
      notes.push(
        `load average at the end: ${os
          .loadavg()
          .map((x) => x.toFixed(1))
          .join(" ")} (other work on this 2-core machine inflates wall-clock figures)`,
        "HMAC-SHA256 (libcrypto midstates through koffi, src/transport/mac.ts) costs ~1.5-4 µs a report here and dominates the signed and verified figures",
        "each slot is its own page (10,000 pages): an unchanged scan reads one lock word from each; an all-changed scan also runs `read` on each report area in place (it gets the mapping and the area's offset, no view per slot; the manager verifies there), and the copying scan makes a view of each area and copies its 136 bytes out (subarray + Uint8Array.set; its figure above says what that adds)",
      );
    } finally {
      rmSync(path, { force: true, recursive: true });
    }
    ctx.progress(1, "done");
    return { name: "shm", figures, notes };
  },
};

if (isMain(import.meta.url)) await runStandalone(bench);
