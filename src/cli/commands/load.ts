// `weir load`: open-loop UDP load against testbed partitions (or any packet server), with
// a rate schedule, bounded in duration and packet count; prints sent, answered, lost,
// latency percentiles and the generator's own CPU cost. `--tcp`: closed-loop TCP instead
// (N connections per target, one request in flight each, optional think time).
import type { Command } from "commander";
import { ErrorCodes, WeirError } from "../../core/errors.ts";

const collect = (v: string, prev: string[]) => [...prev, v];

interface LoadCliOpts {
  prefix: string;
  stateFile?: string;
  target: string[];
  only?: string;
  schedule: string;
  scheduleFor: string[];
  duration: string;
  maxPackets: string;
  timeout: string;
  tick: string;
  stagger?: boolean;
  json?: boolean;
  quiet?: boolean;
  tcp?: boolean;
  connections: string;
  thinkMs: string;
}

const fmt = (x: number | null, digits = 1) => (x === null ? "-" : x.toFixed(digits));

export function register(program: Command): void {
  program
    .command("load")
    .description("Send open-loop UDP load to packet servers following a rate schedule (bounded).")
    .addHelpText(
      "after",
      [
        "",
        "Targets: every partition of the testbed (--prefix / --state-file), or --target name=addr:port.",
        "Schedules (--schedule for all, --schedule-for name=SPEC for one):",
        "  500 | constant:500            500 packets/s",
        "  step:200,1000@5s              200/s, then 1000/s from 5 s",
        "  ramp:100..2000@10s            linear 100 -> 2000/s over 0-10 s (ramp:A..B@2s..10s)",
        "  square:200,1500/4s[/0.25]     high for the first half (or quarter) of every 4 s",
        "  trace:FILE | trace-linear:FILE   rows 'tMs,pps'",
        "Open loop: packets go out at the scheduled rate whether or not replies come back.",
        "Lost = no reply within --timeout. Latency = reply arrival - send, from the client's clock.",
        "",
        "--tcp: closed loop over TCP to the same port number (the testbed's servers listen on both).",
        "  --connections N per target, each sends its next request when the reply arrives",
        "  (after --think-ms); --schedule does not apply; --max-packets bounds the requests.",
        "  A request unanswered within --timeout times out and its connection is re-opened.",
      ].join("\n"),
    )
    .option("--prefix <name>", "testbed prefix", "weir")
    .option("--state-file <file>", "testbed state file (default /run/weir/testbed-<prefix>.json)")
    .option(
      "--target <name=addr:port>",
      "a target (repeatable); replaces the testbed's partitions",
      collect,
      [],
    )
    .option("--only <names>", "only these partitions (comma-separated)")
    .option("--schedule <spec>", "rate schedule for every target", "500")
    .option("--schedule-for <name=spec>", "schedule for one target (repeatable)", collect, [])
    .option("--duration <d>", "stop sending after this long", "10s")
    .option("--max-packets <n>", "stop sending after this many packets in all", "1000000")
    .option("--timeout <d>", "a reply later than this is lost", "1s")
    .option("--tick <d>", "send batches this often (1ms to 100ms)", "5ms")
    .option(
      "--stagger",
      "send each target's batches on a phase of its own within the tick (default: all on one tick)",
    )
    .option("--tcp", "closed-loop TCP instead of open-loop UDP")
    .option("--connections <n>", "TCP: connections per target", "4")
    .option("--think-ms <ms>", "TCP: pause between a reply and the next request", "0")
    .option("--json", "print the full result as JSON")
    .option("--quiet", "no per-second progress")
    .action(async (o: LoadCliOpts) => {
      const { readFileSync } = await import("node:fs");
      const { runLoad } = await import("../../testbed/load.ts");
      const { parseDurationMs, parseScheduleSpec } = await import("../../testbed/schedule.ts");
      const { readState } = await import("../../testbed/state.ts");
      const { defaultStateFile } = await import("../../testbed/names.ts");
      const readFile = (p: string) => {
        try {
          return readFileSync(p, "utf8");
        } catch (err) {
          throw new WeirError(
            ErrorCodes.CONFIG_NOT_FOUND,
            `'schedule' trace file ${p} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          );
        }
      };

      let targets: { name: string; addr: string; port: number }[];
      if (o.target.length > 0) {
        targets = o.target.map((t) => {
          const m = /^([^=]+)=([\d.]+):(\d+)$/.exec(t);
          if (!m || Number(m[3]) < 1 || Number(m[3]) > 65_535) {
            throw new WeirError(
              ErrorCodes.CONFIG_INVALID,
              `'target' must look like name=addr:port (port 1-65535): current value is ${JSON.stringify(t)}`,
            );
          }
          return { name: m[1]!, addr: m[2]!, port: Number(m[3]) };
        });
      } else {
        const file = o.stateFile ?? defaultStateFile(o.prefix);
        const state = readState(file);
        if (!state || state.partitions.length === 0) {
          throw new WeirError(
            ErrorCodes.TESTBED,
            `no testbed partitions recorded in ${file}: run \`weir testbed up\` or pass --target`,
          );
        }
        targets = state.partitions.map((p) => ({ name: p.name, addr: p.nsAddr, port: p.port }));
      }
      if (o.only) {
        const only = new Set(o.only.split(",").map((s) => s.trim()));
        targets = targets.filter((t) => only.has(t.name));
      }
      const perTarget = new Map<string, string>();
      for (const s of o.scheduleFor) {
        const i = s.indexOf("=");
        if (i < 1)
          throw new WeirError(
            ErrorCodes.CONFIG_INVALID,
            `'schedule-for' must look like name=SPEC: current value is ${JSON.stringify(s)}`,
          );
        perTarget.set(s.slice(0, i), s.slice(i + 1));
      }
      // a schedule for a target that is not there would be ignored without a word
      for (const name of perTarget.keys())
        if (!targets.some((t) => t.name === name))
          throw new WeirError(
            ErrorCodes.CONFIG_INVALID,
            `'schedule-for' must name a target (${targets.map((t) => t.name).join(", ") || "none"}): current value is ${JSON.stringify(name)}`,
          );
      const maxPackets = Number(o.maxPackets);
      const ac = new AbortController();
      process.once("SIGINT", () => ac.abort());
      process.once("SIGTERM", () => ac.abort());
      if (o.tcp) {
        if (o.scheduleFor.length > 0)
          throw new WeirError(
            ErrorCodes.CONFIG_INVALID,
            `'schedule-for' does not apply to --tcp (closed loop): current value is ${JSON.stringify(o.scheduleFor)}`,
          );
        await runTcp(o, targets, maxPackets, ac.signal, parseDurationMs);
        return;
      }
      const result = await runLoad({
        targets: targets.map((t) => {
          const spec = perTarget.get(t.name);
          return spec ? { ...t, schedule: parseScheduleSpec(spec, readFile) } : t;
        }),
        schedule: parseScheduleSpec(o.schedule, readFile),
        durationMs: parseDurationMs(o.duration, "duration"),
        maxPackets,
        timeoutMs: parseDurationMs(o.timeout, "timeout"),
        tickMs: parseTickMs(o.tick, parseDurationMs),
        ...(o.stagger ? { targetPhase: "staggered" as const } : {}),
        signal: ac.signal,
        ...(o.json || o.quiet
          ? {}
          : {
              onTick: (p) =>
                process.stderr.write(
                  `${(p.elapsedMs / 1000).toFixed(1).padStart(6)}s  ${p.targets
                    .map(
                      (t) =>
                        `${t.name} offered ${t.offeredPps}/s answered ${t.answeredPps}/s p99 ${t.p99Ms === null ? "-" : `${fmt(t.p99Ms)} ms`}`,
                    )
                    .join("  |  ")}\n`,
                ),
            }),
      });
      if (o.json) {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      const rows = [
        [
          "TARGET",
          "SCHEDULE",
          "SCHEDULED",
          "SENT",
          "ANSWERED",
          "LOST",
          "LATE",
          "SERVED",
          "p50 ms",
          "p99 ms",
          "max ms",
        ],
      ];
      for (const t of result.targets) {
        rows.push([
          `${t.name} ${t.addr}:${t.port}`,
          t.schedule,
          String(t.scheduled),
          String(t.sent),
          String(t.answered),
          String(t.lost),
          String(t.late),
          t.servedRatio === null ? "-" : `${(t.servedRatio * 100).toFixed(1)}%`,
          fmt(t.latency.p50Ms, 2),
          fmt(t.latency.p99Ms, 2),
          fmt(t.latency.maxMs, 2),
        ]);
      }
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      const table = rows
        .map((r) =>
          r.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  "),
        )
        .join("\n");
      const g = result.generator;
      process.stdout.write(
        `${table}\nstopped by ${result.stoppedBy} after ${(result.sendingMs / 1000).toFixed(1)} s; ` +
          `generator CPU ${g.cpuUserMs + g.cpuSystemMs} ms (${(g.cpuCores * 100).toFixed(1)}% of one core), ` +
          `${g.cpuMicrosPer1000Packets === null ? "-" : (g.cpuMicrosPer1000Packets / 1000).toFixed(1)} ms per 1,000 packets\n`,
      );
    });
}

type Target = { name: string; addr: string; port: number };

/** The most backlog a tick sends at once (runLoad's maxBurstMs default): a longer tick sends less. */
const MAX_TICK_MS = 100;

/**
 * `--tick`: from 1ms (a timer fires no more often: 0 ran at 1 ms without a word) to 100ms (a
 * tick longer than the backlog sent at once sent less than the schedule asked).
 */
function parseTickMs(text: string, parseDurationMs: (v: string, field: string) => number): number {
  const ms = parseDurationMs(text, "tick");
  if (!(ms >= 1 && ms <= MAX_TICK_MS))
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `'tick' must be from 1ms to ${MAX_TICK_MS}ms: current value is ${JSON.stringify(text)}`,
    );
  return ms;
}

async function runTcp(
  o: LoadCliOpts,
  targets: Target[],
  maxRequests: number,
  signal: AbortSignal,
  parseDurationMs: (v: string, field: string) => number,
): Promise<void> {
  const { runTcpLoad } = await import("../../testbed/tcp-load.ts");
  const num = (v: string, field: string, rule: string, ok: (n: number) => boolean): number => {
    const n = Number(v);
    if (v.trim() === "" || !ok(n))
      throw new WeirError(
        ErrorCodes.CONFIG_INVALID,
        `'${field}' ${rule}: current value is ${JSON.stringify(v)}`,
      );
    return n;
  };
  if (!(Number.isInteger(maxRequests) && maxRequests > 0))
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `'max-packets' must be a positive integer (the request bound with --tcp): current value is ${JSON.stringify(o.maxPackets)}`,
    );
  const result = await runTcpLoad({
    targets,
    connections: num(
      o.connections,
      "connections",
      "must be an integer within 1..1024",
      (n) => Number.isInteger(n) && n >= 1 && n <= 1024,
    ),
    thinkMs: num(o.thinkMs, "think-ms", "must be within 0..60000", (n) => n >= 0 && n <= 60_000),
    durationMs: parseDurationMs(o.duration, "duration"),
    maxRequests,
    timeoutMs: parseDurationMs(o.timeout, "timeout"),
    signal,
    ...(o.json || o.quiet
      ? {}
      : {
          onTick: (p) =>
            process.stderr.write(
              `${(p.elapsedMs / 1000).toFixed(1).padStart(6)}s  ${p.targets
                .map(
                  (t) =>
                    `${t.name} conns ${t.open} requests ${t.requestsPerSec}/s replies ${t.repliesPerSec}/s p99 ${t.p99Ms === null ? "-" : `${fmt(t.p99Ms)} ms`}`,
                )
                .join("  |  ")}\n`,
            ),
        }),
  });
  if (o.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const rows = [
    [
      "TARGET",
      "CONNS",
      "SENT",
      "ANSWERED",
      "LOST",
      "TIMEOUTS",
      "ERRORS",
      "REQ/S",
      "p50 ms",
      "p90 ms",
      "p99 ms",
      "p999 ms",
      "max ms",
    ],
  ];
  for (const t of result.targets) {
    rows.push([
      `${t.name} ${t.addr}:${t.port}`,
      String(t.connections),
      String(t.sent),
      String(t.answered),
      String(t.lost),
      String(t.timedOut),
      String(t.errors.connect + t.errors.reset + t.errors.protocol),
      t.requestsPerSec.toFixed(1),
      fmt(t.latency.p50Ms, 2),
      fmt(t.latency.p90Ms, 2),
      fmt(t.latency.p99Ms, 2),
      fmt(t.latency.p999Ms, 2),
      fmt(t.latency.maxMs, 2),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows
    .map((r) =>
      r.map((c, i) => (i >= 1 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  "),
    )
    .join("\n");
  const g = result.generator;
  process.stdout.write(
    `${table}\nclosed loop over TCP, think ${result.thinkMs} ms; stopped by ${result.stoppedBy} after ${(result.sendingMs / 1000).toFixed(1)} s; ` +
      `generator CPU ${g.cpuUserMs + g.cpuSystemMs} ms (${(g.cpuCores * 100).toFixed(1)}% of one core), ` +
      `${g.cpuMicrosPerRequest === null ? "-" : g.cpuMicrosPerRequest.toFixed(1)} us per request\n`,
  );
}
