// A stand-in for N in-partition agents reporting over UDP, for measuring what their reports cost
// the manager (overhead.ts's `agents` runtime, `overhead-ab.ts --udp-agents`): one process, one
// socket per agent, each agent sending one signed report (REPORT_BYTES, its partition's index,
// increasing sequences, this process's monotonic clock) every `intervalMs`, the agents' phases spread evenly over the interval as independent
// agents' would be. Its counters grow at a steady rate (`packetsPerSec` offered and served per
// agent, 1 ms of CPU per 1,000 packets). Bounded: it stops after `durationMs`, or when its
// stdin closes (the parent gone), and prints what it sent as JSON.
//   node … bench/udp-agents.ts PORT PARTITIONS INTERVAL_MS DURATION_MS KEY_HEX [PACKETS_PER_SEC]
// Every agent signs with the same key here (KEY_HEX): the config must give each partition it.
import { type ChildProcess, spawn } from "node:child_process";
import dgram from "node:dgram";
import { fileURLToPath } from "node:url";
import { encodeReport, parseKeyHex } from "../src/transport/codec.ts";
import { macKey } from "../src/transport/mac.ts";
import { isMain } from "./harness.ts";

export interface AgentsOptions {
  port: number;
  partitions: number;
  intervalMs: number;
  durationMs: number;
  keyHex: string;
  packetsPerSec: number;
}

/**
 * This script as a child process (this file, run by this process's node with its loader: the
 * .ts through tsx, or the compiled .js), stopped by closing its stdin (stopAgents).
 */
export function spawnAgents(o: AgentsOptions): ChildProcess {
  return spawn(
    process.execPath,
    [
      ...process.execArgv,
      fileURLToPath(import.meta.url),
      String(o.port),
      String(o.partitions),
      String(o.intervalMs),
      String(o.durationMs),
      o.keyHex,
      String(o.packetsPerSec),
    ],
    { stdio: ["pipe", "ignore", "inherit"] },
  );
}

/** Closes the agents' stdin and waits up to 5 s for them to exit, then kills them. */
export async function stopAgents(agents: ChildProcess): Promise<void> {
  if (agents.exitCode !== null || agents.signalCode !== null) return;
  const gone = new Promise((resolve) => agents.once("exit", resolve));
  agents.stdin?.end();
  const late = await Promise.race([
    gone.then(() => false),
    new Promise<boolean>((r) => setTimeout(() => r(true), 5000).unref()),
  ]);
  if (late) agents.kill("SIGKILL");
}

/** Which agents report at tick `t` of `ticks` per interval: those whose index ≡ t (mod ticks). */
export function agentsAtTick(tick: number, ticks: number, partitions: number): number[] {
  const out: number[] = [];
  for (let i = tick % ticks; i < partitions; i += ticks) out.push(i);
  return out;
}

/** Runs the agents until `durationMs` has passed or `stop` resolves; returns what was sent. */
export async function runAgents(
  o: AgentsOptions,
  stop: Promise<void> = new Promise(() => {}),
): Promise<{ sent: number; errors: number; ms: number }> {
  const key = macKey(parseKeyHex(o.keyHex));
  let errors = 0;
  const sockets = await Promise.all(
    Array.from(
      { length: o.partitions },
      () =>
        new Promise<dgram.Socket>((resolve, reject) => {
          const s = dgram.createSocket("udp4");
          s.once("error", reject);
          s.connect(o.port, "127.0.0.1", () => {
            // later errors (a manager gone: ICMP unreachable on the next send) are counted
            s.off("error", reject).on("error", () => errors++);
            resolve(s);
          });
        }),
    ),
  );
  const seq = new Float64Array(o.partitions);
  const ticks = 10;
  const tickMs = o.intervalMs / ticks;
  const t0 = performance.now();
  let sent = 0;
  let tick = 0;
  let stopped = false;
  void stop.then(() => {
    stopped = true;
  });
  while (!stopped && performance.now() - t0 < o.durationMs) {
    const nowMs = performance.now();
    const packets = Math.floor((nowMs / 1000) * o.packetsPerSec);
    for (const i of agentsAtTick(tick, ticks, o.partitions)) {
      seq[i]! += 1;
      // a report of its own each (dgram may read a buffer after send() returns)
      const report = encodeReport(
        {
          partitionIndex: i,
          sequence: seq[i]!,
          timestampMs: Math.floor(nowMs),
          rxPackets: packets,
          txPackets: packets,
          droppedPackets: 0,
          cpuUsageNs: packets * 1000,
          nrPeriods: 0,
          nrThrottled: 0,
          throttledNs: 0,
          velocityPacketsPerCpuSec: 1_000_000,
          velocityWindowMs: o.intervalMs,
        },
        key,
      );
      try {
        sockets[i]!.send(report);
        sent++;
      } catch {
        errors++;
      }
    }
    tick++;
    // the next tick on the schedule (not tickMs after this one: the sends take time)
    const wait = t0 + tick * tickMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const ms = performance.now() - t0;
  await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return { sent, errors, ms };
}

if (isMain(import.meta.url)) {
  const [port, partitions, intervalMs, durationMs, keyHex, packetsPerSec] = process.argv.slice(2);
  const o: AgentsOptions = {
    port: Number(port),
    partitions: Number(partitions),
    intervalMs: Number(intervalMs),
    durationMs: Number(durationMs),
    keyHex: keyHex ?? "",
    packetsPerSec: Number(packetsPerSec ?? 1000),
  };
  for (const [k, v] of Object.entries(o))
    if (k !== "keyHex" && !(Number.isFinite(v) && (v as number) > 0))
      throw new Error(`udp-agents: ${k} must be a positive number, got ${v}`);
  // the parent's end of stdin closes when it exits: stop then, whatever the duration
  const stop = new Promise<void>((resolve) => {
    process.stdin.on("end", resolve).on("close", resolve).resume();
  });
  const result = await runAgents(o, stop);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}
