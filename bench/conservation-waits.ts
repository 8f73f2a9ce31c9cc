// conservation-real: where the packet servers waited for a CPU, per policy (the scheduler
// trace of each run, sched-trace.ts), and the note that states it with the run's figures.
import type { RunOutcome, ScenarioName } from "./conservation-run.ts";
import { fmtStats, stats } from "./harness.ts";
import type { TaskClass, WaitBreakdown } from "./sched-trace.ts";

type Row = Array<string | number>;
const perSec = (w: WaitBreakdown, n: number) => (w.spanMs > 0 ? (n * 1000) / w.spanMs : Number.NaN);
/** ms per second the servers waited while the other CPU ran `c` (or `c`s). */
const waitWhile = (w: WaitBreakdown, ...cs: TaskClass[]) =>
  cs.reduce((s, c) => s + (w.otherCpu[c] ?? 0), 0) * w.waitMsPerSec;

export const WAIT_COLUMNS = [
  "runs",
  "servers' wait ms/s",
  "waits > 1 ms /s",
  "p99 wait µs",
  "wait while the other CPU ran only the hog ms/s",
  "wait while the other CPU was idle ms/s",
  "wait while the other CPU ran a server or the generator ms/s",
  "queued servers pulled /s",
  "wake-ups onto a busy CPU beside an idle or hog-only one %",
];

/** One row of the wait table for the runs `xs` (those with a trace). */
export function waitRow(label: string, xs: RunOutcome[]): Row {
  const ws = xs.flatMap((o) => (o.schedWait && o.schedWait.spanMs > 0 ? [o.schedWait] : []));
  const col = (f: (w: WaitBreakdown) => number, digits = 1, scale = 1) =>
    fmtStats(ws.map(f), digits, scale);
  return [
    label,
    ws.length,
    col((w) => w.waitMsPerSec),
    col((w) => perSec(w, w.waitsOver1Ms)),
    col((w) => w.p99WaitUs, 0),
    col((w) => waitWhile(w, "hog")),
    col((w) => waitWhile(w, "idle")),
    col((w) => waitWhile(w, "server", "generator")),
    col((w) => perSec(w, w.pulls)),
    col(misplaced, 1),
  ];
}

const misplaced = (w: WaitBreakdown) =>
  w.wakeups > 0 ? (100 * w.wakeupsBesideFreeCpu) / w.wakeups : Number.NaN;
const med = (xs: number[]) => stats(xs.filter(Number.isFinite))?.median ?? Number.NaN;

/**
 * The measured account of the p99 ratio for one traffic kind: the servers' wait with the hog
 * stopped against beside it (weir, static weights), how much of it the other CPU spent running
 * only the hog (a CPU the servers could have had), and the CPU per reply both ways. Every
 * number is from these runs.
 */
export function waitNote(
  label: string,
  of: (s: ScenarioName, policy?: string) => RunOutcome[],
  scenario: ScenarioName,
  ref: ScenarioName,
): string | null {
  const pick = (xs: RunOutcome[]) =>
    xs.flatMap((o) => (o.schedWait && o.schedWait.spanMs > 0 ? [o.schedWait] : []));
  const stopped = pick(of(ref));
  const weir = pick(of(scenario, "weir"));
  const sw = pick(of(scenario, "static-weights"));
  if (stopped.length === 0 || weir.length === 0) return null;
  const f = (ws: WaitBreakdown[], g: (w: WaitBreakdown) => number, d = 1) =>
    med(ws.map(g)).toFixed(d);
  const perReply = (xs: RunOutcome[]) =>
    med(
      xs.map((o) => {
        const v = Object.values(o.cpuPerReplyUs ?? {});
        return v.length ? v.reduce((s, x) => s + x, 0) / v.length : Number.NaN;
      }),
    ).toFixed(0);
  const share = (ws: WaitBreakdown[], c: TaskClass) => f(ws, (w) => (w.otherCpu[c] ?? 0) * 100, 0);
  return (
    `${label} — where the servers waited (scheduler trace, medians): with the hog stopped ${f(stopped, (w) => w.waitMsPerSec)} ms per second, ` +
    `${f(stopped, (w) => perSec(w, w.waitsOver1Ms))} waits over 1 ms per second, ${share(stopped, "idle")} % of the waiting while the other CPU was idle, ` +
    `${f(stopped, (w) => perSec(w, w.pulls))} queued servers pulled to the other CPU per second; ` +
    `beside the hog under weir ${f(weir, (w) => w.waitMsPerSec)} ms per second, ${f(weir, (w) => perSec(w, w.waitsOver1Ms))} waits over 1 ms per second, ` +
    `${share(weir, "hog")} % of the waiting while the other CPU ran only the hog and ${share(weir, "idle")} % while it was idle, ` +
    `${f(weir, (w) => perSec(w, w.pulls))} pulled per second; ` +
    `wake-ups put on a busy CPU while the other was idle or ran only the hog: ${f(stopped, misplaced, 0)} % with the hog stopped, ${f(weir, misplaced, 0)} % beside it under weir` +
    (sw.length
      ? `; static weights ${f(sw, (w) => w.waitMsPerSec)} ms per second, ${share(sw, "hog")} % of it beside a CPU running only the hog`
      : "") +
    `. CPU per reply (mean of the three partitions): ${perReply(of(ref))} µs with the hog stopped, ${perReply(of(scenario, "weir"))} µs beside it under weir, ${perReply(of(scenario, "static-weights"))} µs under static weights.`
  );
}

/**
 * The servers' uninterruptible sleeps over every traced run (WaitBreakdown.blocked): how many,
 * in how many runs, the longest and what woke it. A server asleep in the kernel waits for
 * neither a CPU nor a request — on these machines the host's memory reclaim (kdamond) held the
 * heap's lock while the server called brk; the testbed keeps the servers' heaps steady
 * (steady-heap.ts).
 * Null without traced runs.
 */
export function blockedNote(runs: RunOutcome[]): string | null {
  const ws = runs.flatMap((o) =>
    o.schedWait && o.schedWait.spanMs > 0 && o.schedWait.blocked ? [o.schedWait] : [],
  );
  if (ws.length === 0) return null;
  const hit = ws.filter((w) => w.blocked.count > 0);
  const head = `Servers asleep in the kernel (uninterruptible sleep over 1 ms, scheduler trace, ${ws.length} runs, every policy)`;
  if (hit.length === 0) return `${head}: none.`;
  const longest = hit.reduce((a, w) => (w.blocked.longestMs > a.blocked.longestMs ? w : a));
  const count = hit.reduce((s, w) => s + w.blocked.count, 0);
  return `${head}: ${count} in ${hit.length} runs, the longest ${longest.blocked.longestMs.toFixed(1)} ms (woken by ${longest.blocked.longestBy ?? "an unknown task"}).`;
}
