// `weir goal <partition>`: turn a goal in requests/s into the packets/s goal weir manages to.
// It reads a running weir's GET /api/partitions (what `weir status` reads) over a window,
// averages the partition's served and offered packets/s, divides them by the requests/s the
// application measured over the same window, and prints the `goal:` line for a target rate.
// The arithmetic is pure (averageThroughput, convertGoal); the sampling takes its clock,
// sleep and fetch as arguments.
import type { Command } from "commander";
import type { PartitionsSnapshot } from "../../api/snapshot.ts";
import { ErrorCodes, WeirError } from "../../core/errors.ts";
import { positive } from "../options.ts";
import { DEFAULT_STATUS_URL, describeError, fetchStatus } from "./status.ts";

/** How often the API is read while the manager's cycle interval is not known. */
export const DEFAULT_SAMPLE_EVERY_MS = 200;
export const DEFAULT_GOAL_WINDOW = "10s";

/** One cycle's rates of the partition, as /api/partitions showed them. */
export interface ThroughputSample {
  cycle: number;
  windowMs: number;
  servedPacketsPerSec: number;
  offeredPacketsPerSec: number;
}

export interface AveragedThroughput {
  /** Cycles averaged. */
  cycles: number;
  /** Their windows added up: the traffic time the average covers. */
  coveredMs: number;
  servedPacketsPerSec: number;
  offeredPacketsPerSec: number;
}

/**
 * The mean of the cycles' rates, each weighted by its window (= packets counted ÷ time
 * covered; with equal windows, the plain mean). Null without a sample with a window.
 */
export function averageThroughput(samples: readonly ThroughputSample[]): AveragedThroughput | null {
  let cycles = 0;
  let coveredMs = 0;
  let servedPackets = 0;
  let offeredPackets = 0;
  for (const s of samples) {
    if (!(s.windowMs > 0)) continue;
    cycles++;
    coveredMs += s.windowMs;
    servedPackets += s.servedPacketsPerSec * s.windowMs;
    offeredPackets += s.offeredPacketsPerSec * s.windowMs;
  }
  if (cycles === 0) return null;
  return {
    cycles,
    coveredMs,
    servedPacketsPerSec: servedPackets / coveredMs,
    offeredPacketsPerSec: offeredPackets / coveredMs,
  };
}

export interface GoalConversion {
  /** Served packets/s ÷ requests/s: what one request costs in the packets a goal is compared with. */
  servedPacketsPerRequest: number;
  /** Offered packets/s ÷ requests/s: what arrives per request. */
  offeredPacketsPerRequest: number;
  /** Served packets per request × target requests/s, rounded up: the `goal.packetsPerSec`. */
  goalPacketsPerSec: number;
}

/**
 * Packets per request over one window and the goal for a target rate. weir compares a goal
 * with served packets/s (the replies and ACKs the partition sends), so the goal is served ×
 * target ÷ requests, rounded up. It is rounded to 12 significant digits first, so a binary
 * fraction (1027.4 × 1500 ÷ 1100 = 1401.0000000000002) does not round a whole goal up by one.
 */
export function convertGoal(
  measured: Pick<AveragedThroughput, "servedPacketsPerSec" | "offeredPacketsPerSec">,
  requestsPerSec: number,
  targetRequestsPerSec: number,
): GoalConversion {
  const exact = (measured.servedPacketsPerSec * targetRequestsPerSec) / requestsPerSec;
  return {
    servedPacketsPerRequest: measured.servedPacketsPerSec / requestsPerSec,
    offeredPacketsPerRequest: measured.offeredPacketsPerSec / requestsPerSec,
    goalPacketsPerSec: Math.ceil(Number(exact.toPrecision(12))),
  };
}

/** A measurement that cannot be made (unknown partition, no cycles, no traffic): one line. */
export class GoalMeasureError extends Error {
  override name = "GoalMeasureError";
}

export interface SampleDeps {
  fetchSnapshot: () => Promise<PartitionsSnapshot>;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
}

export interface SampledWindow {
  samples: ThroughputSample[];
  /** How often the API was read: the manager's cycle interval, or DEFAULT_SAMPLE_EVERY_MS. */
  sampleEveryMs: number;
  /** The partition's status at the last read. */
  lastStatus: string;
}

function findPartition(snap: PartitionsSnapshot, partition: string, where: string) {
  const p = snap.partitions.find((x) => x.id === partition);
  if (!p) {
    const known = snap.partitions.map((x) => x.id).join(", ") || "none";
    throw new GoalMeasureError(`no partition "${partition}" at ${where} (it has: ${known})`);
  }
  return p;
}

/**
 * Reads the partition's latest cycle every cycle interval (DEFAULT_SAMPLE_EVERY_MS until the
 * manager says) for `durationMs`, keeping each cycle once. The cycle already finished at the
 * first read is left out: its traffic came before the window. Only cycles with status ok and
 * a throughput count. Throws GoalMeasureError for an unknown partition, and whatever
 * fetchSnapshot throws.
 */
export async function samplePartition(
  deps: SampleDeps,
  partition: string,
  durationMs: number,
  where: string,
): Promise<SampledWindow> {
  const endMs = deps.now() + durationMs;
  const first = await deps.fetchSnapshot();
  let lastStatus: string = findPartition(first, partition, where).status;
  let sampleEveryMs = first.intervalMs ?? DEFAULT_SAMPLE_EVERY_MS;
  const before = first.cycle ?? -1;
  const seen = new Set<number>();
  const samples: ThroughputSample[] = [];
  for (;;) {
    const leftMs = endMs - deps.now();
    if (leftMs <= 0) break;
    await deps.sleep(Math.min(sampleEveryMs, leftMs));
    const snap = await deps.fetchSnapshot();
    const p = findPartition(snap, partition, where);
    lastStatus = p.status;
    sampleEveryMs = snap.intervalMs ?? sampleEveryMs;
    const t = p.throughput;
    if (snap.cycle === null || snap.cycle <= before || seen.has(snap.cycle)) continue;
    if (p.status !== "ok" || t === null) continue;
    seen.add(snap.cycle);
    samples.push({
      cycle: snap.cycle,
      windowMs: t.windowMs,
      servedPacketsPerSec: t.servedPacketsPerSec,
      offeredPacketsPerSec: t.offeredPacketsPerSec,
    });
  }
  return { samples, sampleEveryMs, lastStatus };
}

export interface GoalReport extends AveragedThroughput, GoalConversion {
  partition: string;
  url: string;
  windowMs: number;
  sampleEveryMs: number;
  requestsPerSec: number;
  targetRequestsPerSec: number;
  /** The line for the partition's config. */
  goal: string;
}

/** Average the window and convert; GoalMeasureError when there is nothing to convert. */
export function goalReport(
  window: SampledWindow,
  o: {
    partition: string;
    url: string;
    windowMs: number;
    requestsPerSec: number;
    targetRequestsPerSec: number;
  },
): GoalReport {
  const avg = averageThroughput(window.samples);
  if (avg === null)
    throw new GoalMeasureError(
      `no cycle of "${o.partition}" with throughput in ${fmt(o.windowMs / 1000, 1)} s ` +
        `(its status: ${window.lastStatus}); measure while weir is running and the partition is ok`,
    );
  if (!(avg.servedPacketsPerSec > 0))
    throw new GoalMeasureError(
      `"${o.partition}" served no packets in ${avg.cycles} cycles: measure while the load ` +
        "whose requests/s you give is running",
    );
  const conv = convertGoal(avg, o.requestsPerSec, o.targetRequestsPerSec);
  return {
    ...o,
    sampleEveryMs: window.sampleEveryMs,
    ...avg,
    ...conv,
    goal: `goal: { packetsPerSec: ${conv.goalPacketsPerSec} }`,
  };
}

const fmt = (x: number, digits: number): string =>
  x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const rate = (x: number): string => x.toLocaleString("en-US", { maximumFractionDigits: 3 });

/** The report as text: the measurement, packets per request, and the config line. */
export function formatGoal(r: GoalReport): string {
  const per = (packets: number, perRequest: number) =>
    `${fmt(packets, 1)} packets/s ÷ ${rate(r.requestsPerSec)} requests/s = ${fmt(perRequest, 3)} packets per request`;
  return [
    `${r.partition}: ${r.cycles} cycles (${fmt(r.coveredMs / 1000, 1)} s of traffic) read every ` +
      `${r.sampleEveryMs} ms over ${fmt(r.windowMs / 1000, 1)} s from ${r.url}`,
    `  served   ${per(r.servedPacketsPerSec, r.servedPacketsPerRequest)}`,
    `  offered  ${per(r.offeredPacketsPerSec, r.offeredPacketsPerRequest)}`,
    `a goal is compared with served packets/s: ${rate(r.targetRequestsPerSec)} requests/s × ` +
      `${fmt(r.servedPacketsPerRequest, 3)} = ${rate(r.goalPacketsPerSec)} packets/s (rounded up)`,
    `  ${r.goal}`,
  ].join("\n");
}

export interface GoalOptions {
  requestsPerSec: number;
  targetRequestsPerSec: number;
  for: string;
  url: string;
  json?: boolean;
}

export interface GoalIo extends SampleDeps {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** The command: measure, convert, print. Returns the exit code (0, or 1 with one line on err). */
export async function runGoal(partition: string, o: GoalOptions, io: GoalIo): Promise<number> {
  // testbed/schedule.ts loads zod: imported when the command runs, not with the command table
  const { parseDurationMs } = await import("../../testbed/schedule.ts");
  const windowMs = parseDurationMs(o.for, "--for");
  if (!(windowMs > 0))
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `--for must be a duration above 0 like 10s: got "${o.for}"`,
    );
  try {
    const window = await samplePartition(io, partition, windowMs, o.url);
    const report = goalReport(window, {
      partition,
      url: o.url,
      windowMs,
      requestsPerSec: o.requestsPerSec,
      targetRequestsPerSec: o.targetRequestsPerSec,
    });
    io.out(o.json ? `${JSON.stringify(report)}\n` : `${formatGoal(report)}\n`);
    return 0;
  } catch (err) {
    const line = err instanceof GoalMeasureError ? err.message : describeError(err, o.url);
    io.err(`weir goal: ${line}\n`);
    return 1;
  }
}

export function register(program: Command): void {
  program
    .command("goal")
    .description(
      "Turn a goal in requests/s into the packets/s goal weir manages to: measure a partition's " +
        "served and offered packets/s from a running weir's HTTP API while your application " +
        "measures its requests/s over the same window, and print packets per request and the " +
        "`goal: { packetsPerSec: N }` line for the rate you want guaranteed.",
    )
    .argument("<partition>", "partition name, as in the config")
    .requiredOption(
      "--requests-per-sec <r>",
      "requests/s your application measured over the same window",
      positive("requests-per-sec"),
    )
    .requiredOption(
      "--target-requests-per-sec <t>",
      "requests/s the partition must sustain",
      positive("target-requests-per-sec"),
    )
    .option("--for <duration>", "how long to measure (500ms, 10s, 2m)", DEFAULT_GOAL_WINDOW)
    .option("--url <url>", "base URL of weir's API", DEFAULT_STATUS_URL)
    .option("--json", "print the measurement and the goal as JSON")
    .addHelpText(
      "after",
      [
        "",
        "weir counts packets at the partition's interfaces: on the host end of a veth, served =",
        "rx (the replies and ACKs the partition sends), offered = tx (what arrives for it). A goal",
        "is compared with served packets/s. UDP request/reply: one reply packet per request. TCP:",
        "a reply may carry the ACK or come with a separate one, and a large reply is several",
        "packets, so measure under your usual load.",
        "",
        "Example: weir goal web --requests-per-sec 1125 --target-requests-per-sec 1500 --for 10s",
      ].join("\n"),
    )
    .action(async (partition: string, o: GoalOptions) => {
      process.exitCode = await runGoal(partition, o, {
        fetchSnapshot: () => fetchStatus(o.url),
        sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
        now: () => performance.now(),
        out: (text) => process.stdout.write(text),
        err: (text) => process.stderr.write(text),
      });
    });
}
