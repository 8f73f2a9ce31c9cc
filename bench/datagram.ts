// Verified datagram reports per second: a sender process blasts pre-signed reports (1,000
// partitions, increasing sequences) over loopback UDP at the manager's DatagramReportSource,
// which rate-limits (limits set out of the way here), verifies (HMAC, replay, skew) and keeps
// the latest per partition. Also the verifier alone, without a socket. Each figure is the median
// of `--reps` runs (default 5; `--quick`: 1) with its range; the reports are signed once.
import { spawn } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { encodeReport, KeyRing, parseKeyHex, ReportVerifier } from "../src/transport/codec.ts";
import { DatagramReportSource } from "../src/transport/datagram.ts";
import { macKey } from "../src/transport/mac.ts";
import {
  type BenchFigure,
  type Benchmark,
  isMain,
  nowNs,
  repeated,
  runStandalone,
} from "./harness.ts";

const PARTITIONS = 1000;
const KEY_BYTES = parseKeyHex("d4".repeat(32));
const KEY = macKey(KEY_BYTES);

// Plain JS run by a separate node process (so this process's CPU time is the receiver's
// alone): reads the pre-signed reports from a file and sends them all, `chunk` at a time,
// waiting for each chunk's send callbacks (so libuv's queue stays bounded).
const SENDER = `
const dgram = require("node:dgram");
const fs = require("node:fs");
const [file, port, size, chunk] = process.argv.slice(1);
const all = fs.readFileSync(file);
const n = all.length / Number(size);
const sock = dgram.createSocket("udp4");
let i = 0, errors = 0;
const t0 = process.hrtime.bigint();
function next() {
  if (i >= n) {
    const ns = Number(process.hrtime.bigint() - t0);
    sock.close(() => process.stdout.write(JSON.stringify({ sent: i, errors, ns })));
    return;
  }
  const end = Math.min(n, i + Number(chunk));
  let pending = end - i;
  for (; i < end; i++)
    sock.send(all.subarray(i * size, (i + 1) * size), Number(port), "127.0.0.1", (err) => {
      if (err) errors++;
      if (--pending === 0) next();
    });
}
next();
`;

export const bench: Benchmark = {
  name: "datagram",
  description: "UDP reports received and verified per second (1,000 partitions, loopback)",
  async run(ctx) {
    const total = ctx.quick ? 40_000 : 300_000;
    const figures: BenchFigure[] = [];
    const notes: string[] = [];
    const keys = new KeyRing(
      Array.from({ length: PARTITIONS }, (_, i) => ({ index: i, id: `p${i}`, key: KEY_BYTES })),
    );
    const now = Date.now();
    const base = now * 1000;
    const buffers: Uint8Array[] = [];
    for (let k = 0; k < total; k++) {
      buffers.push(
        encodeReport(
          {
            partitionIndex: k % PARTITIONS,
            sequence: base + k + 1,
            timestampMs: now,
            rxPackets: k,
            txPackets: k,
            droppedPackets: 0,
            cpuUsageNs: k * 1000,
            nrPeriods: 0,
            nrThrottled: 0,
            throttledNs: 0,
            velocityPacketsPerCpuSec: 5000,
            velocityWindowMs: 100,
          },
          KEY,
        ),
      );
      if (k % 10_000 === 0) ctx.progress((0.4 * k) / total, "signing reports");
    }

    const reps = ctx.reps ?? (ctx.quick ? 1 : 5);
    const runs: Array<{
      verifierCpu: number;
      verifierWall: number;
      perSec: number;
      perCpuSec: number;
      offered: number;
      lostPct: number;
    }> = [];
    const file = `/dev/shm/weirb-${process.pid}-datagrams`;
    writeFileSync(file, Buffer.concat(buffers));
    try {
      for (let rep = 0; rep < reps; rep++) {
        const frac = (x: number) => 0.4 + (0.6 * (rep + x)) / reps;
        // 1. The verifier alone (HMAC + checks), per CPU-second.
        const v = new ReportVerifier({ keys, maxAgeMs: 600_000 });
        const c0 = process.cpuUsage();
        const t0 = nowNs();
        const n = Math.min(total, 100_000);
        for (let k = 0; k < n; k++) v.verify(buffers[k]!);
        const wallSec = (nowNs() - t0) / 1e9;
        const cpu = process.cpuUsage(c0);
        if (v.accepted() !== n) throw new Error(`verifier accepted ${v.accepted()} of ${n}`);
        ctx.progress(frac(0.3), `sending (run ${rep + 1} of ${reps})`);

        // 2. Over a real socket, sender in its own process.
        const src = await DatagramReportSource.open({
          keys,
          rateLimit: { ratePerSec: 1e12, burst: 1e12 },
          maxAgeMs: 600_000,
          receiveBufferBytes: 8 * 1024 * 1024,
        });
        let firstAt = 0;
        let lastAt = 0;
        let lastAccepted = 0;
        const probe = setInterval(() => {
          const a = src.accepted();
          if (a > 0 && firstAt === 0) firstAt = nowNs();
          if (a !== lastAccepted) {
            lastAccepted = a;
            lastAt = nowNs();
          }
        }, 1);
        const rc0 = process.cpuUsage();
        let sent: { sent: number; errors: number; ns: number };
        try {
          sent = await new Promise<{ sent: number; errors: number; ns: number }>(
            (resolve, reject) => {
              const child = spawn(
                process.execPath,
                ["-e", SENDER, file, String(src.address().port), "136", "256"],
                { stdio: ["ignore", "pipe", "inherit"] },
              );
              let out = "";
              child.stdout.on("data", (d) => {
                out += String(d);
              });
              child.once("error", reject);
              child.once("exit", (code) =>
                code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`sender exited ${code}`)),
              );
            },
          );
          // Let the receiver drain what is queued in its socket.
          while (nowNs() - lastAt < 200e6) await new Promise((r) => setTimeout(r, 20));
        } finally {
          clearInterval(probe);
        }
        const rcpu = process.cpuUsage(rc0);
        const accepted = src.accepted();
        const received = src.datagramsReceived();
        const windowSec = Math.max(1e-9, (lastAt - firstAt) / 1e9);
        const rej = Object.entries(src.rejected()).filter(([, c]) => c > 0);
        src.close();
        runs.push({
          verifierCpu: n / ((cpu.user + cpu.system) / 1e6),
          verifierWall: n / wallSec,
          perSec: accepted / windowSec,
          perCpuSec: accepted / ((rcpu.user + rcpu.system) / 1e6),
          offered: sent.sent / (sent.ns / 1e9),
          lostPct: ((sent.sent - received) / sent.sent) * 100,
        });
        notes.push(
          `run ${rep + 1}: ${sent.sent} sent, ${received} received, ${accepted} accepted${rej.length ? `, rejected: ${rej.map(([r, c]) => `${r} ${c}`).join(", ")}` : ""}; sender errors ${sent.errors}; receiver CPU ${((rcpu.user + rcpu.system) / 1e6).toFixed(2)} s`,
        );
      }
    } finally {
      rmSync(file, { force: true });
    }
    const of = (f: (r: (typeof runs)[number]) => number, digits = 0) =>
      repeated(runs.map(f), digits);
    const perSec = of((r) => r.perSec);
    figures.push(
      {
        name: "verifier alone (no socket), per CPU-second",
        ...of((r) => r.verifierCpu),
        unit: "reports/s",
      },
      {
        name: "verifier alone (no socket), per wall-clock second",
        ...of((r) => r.verifierWall),
        unit: "reports/s",
      },
      {
        name: "datagram reports received and verified",
        ...perSec,
        unit: "reports/s",
        target: ">= 150,000",
        meets: perSec.value >= 150_000,
      },
      {
        name: "received and verified per receiver CPU-second (socket + rate limit + verify)",
        ...of((r) => r.perCpuSec),
        unit: "reports/s",
      },
      { name: "offered by the sender process", ...of((r) => r.offered), unit: "datagrams/s" },
      { name: "lost in the kernel (socket buffer full)", ...of((r) => r.lostPct, 1), unit: "%" },
    );
    notes.push(
      `load average at the end: ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(" ")} (2 cores shared with other work)`,
      "the MAC runs on libcrypto midstates through koffi (src/transport/mac.ts); node:crypto's createHmac would cost ~4x more per report here",
    );
    ctx.progress(1, "done");
    return { name: "datagram", figures, notes };
  },
};

if (isMain(import.meta.url)) await runStandalone(bench);
