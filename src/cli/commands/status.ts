// `weir status`: the dashboard's picture in the terminal, read from a running weir's HTTP API
// (GET /api/partitions). --watch redraws every second until Ctrl-C.
import type { Command } from "commander";
import { DEFAULT_API_PORT } from "../../api/port.ts";
import type { PartitionsSnapshot } from "../../api/snapshot.ts";
import { formatCpuList } from "../../cgroup/values.ts";

export const DEFAULT_STATUS_URL = `http://127.0.0.1:${DEFAULT_API_PORT}`;

const num = (x: number | null | undefined, digits = 0): string =>
  x === null || x === undefined || !Number.isFinite(x)
    ? "-"
    : x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const millis = (m: number | null | undefined): string =>
  m === null || m === undefined || !Number.isFinite(m) ? "-" : `${num(m)}m`;

interface Column {
  title: string;
  right: boolean;
}

/** Render the snapshot as a plain-text table that fits `width` columns (the why is cut to fit). */
export function formatStatus(
  snap: PartitionsSnapshot,
  opts: { url: string; width: number },
): string {
  const allocated = snap.partitions.reduce(
    (sum, p) => sum + (p.directive?.cpuMillis ?? p.decision?.cpuMillis ?? 0),
    0,
  );
  const head = [
    `weir at ${opts.url}`,
    snap.cycle === null ? "no cycle yet" : `cycle ${snap.cycle}`,
    `capacity ${millis(snap.capacityCpuMillis)}`,
    `entitled ${millis(allocated)}`,
    snap.paused ? "PAUSED (not applying)" : "applying",
    ...(snap.placement
      ? [`placement ${snap.placement.mode}${snap.placement.inForce ? "" : " (not in force)"}`]
      : []),
  ].join("  ");

  const columns: Column[] = [
    { title: "PARTITION", right: false },
    { title: "OFFERED/s", right: true },
    { title: "SERVED/s", right: true },
    { title: "DROPS/s", right: true },
    { title: "CPU USED", right: true },
    { title: "ENTITLED", right: true },
    { title: "EXPRESSED AS", right: false },
    { title: "MIN-MAX", right: true },
    { title: "VELOCITY", right: true },
    { title: "STATUS", right: false },
    { title: "WHY", right: false },
  ];
  const rows = snap.partitions.map((p) => {
    const t = p.throughput;
    const velocity = p.decision?.velocityPacketsPerCpuSec ?? t?.rawVelocityPacketsPerCpuSec ?? null;
    return [
      p.id,
      num(t?.offeredPacketsPerSec),
      num(t?.servedPacketsPerSec),
      num(t?.droppedPacketsPerSec),
      t ? millis(t.cpuCores * 1000) : "-",
      millis(p.directive?.cpuMillis ?? p.decision?.cpuMillis),
      expressed(p.directive, p.mechanisms) +
        (p.placement?.cpus ? `, on CPU ${formatCpuList(p.placement.cpus)}` : ""),
      p.spec ? `${millis(p.spec.minCpuMillis)}-${millis(p.spec.maxCpuMillis)}` : "-",
      num(velocity),
      statusCell(p, snap.atMs),
      p.decision?.why ?? p.error?.message ?? "",
    ];
  });
  const widths = columns.map((c, i) =>
    Math.max(c.title.length, ...rows.map((r) => (r[i] ?? "").length)),
  );
  // The why takes whatever width is left, at least 20 columns.
  const fixed = widths.slice(0, -1).reduce((s, w) => s + w + 2, 0);
  widths[widths.length - 1] = Math.max(20, opts.width - fixed);
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => {
        const w = widths[i] ?? 0;
        const text = cell.length > w ? `${cell.slice(0, Math.max(0, w - 1))}…` : cell;
        return columns[i]?.right ? text.padStart(w) : text.padEnd(w);
      })
      .join("  ")
      .trimEnd();
  return [head, "", line(columns.map((c) => c.title)), ...rows.map(line)].join("\n");
}

/**
 * The partition's status, its error code, and how long its backend has not yet applied what
 * was submitted ("ok, pending 1.2s"; a cgroup backend applies within the cycle).
 */
function statusCell(p: PartitionsSnapshot["partitions"][number], atMs: number | null): string {
  const status = p.error ? `${p.status}:${p.error.code}` : p.status;
  const since = p.allocation?.differsSinceMs;
  if (since === null || since === undefined || atMs === null) return status;
  return `${status}, pending ${((atMs - since) / 1000).toFixed(1)}s`;
}

/**
 * How the entitlement reaches the kernel: "weight 1808", "idle class" (or "min weight" where the
 * kernel has none), plus "cap 500m (max)" when there is one. JSON carries no cap as null.
 */
export function expressed(
  d: PartitionsSnapshot["partitions"][number]["directive"],
  mechanisms: PartitionsSnapshot["partitions"][number]["mechanisms"],
): string {
  if (!d) return "-";
  const base = d.idle
    ? mechanisms && !mechanisms.idleClass
      ? "min weight"
      : "idle class"
    : `weight ${Math.round(d.weight)}`;
  const cap = d.capCpuMillis as number | null;
  return cap !== null && Number.isFinite(cap)
    ? `${base}, cap ${millis(cap)} (${d.capReason ?? "?"})`
    : base;
}

export async function fetchStatus(url: string, timeoutMs = 3000): Promise<PartitionsSnapshot> {
  // A timer of our own, not AbortSignal.timeout: that one's timer does not keep node running,
  // and a server that closes each connection before answering leaves fetch waiting on nothing
  // (undici); node then ended `weir status` with exit 13 and no word (found on a loopback
  // port held by another program).
  const ac = new AbortController();
  const timer = setTimeout(
    () => ac.abort(new Error(`no answer from ${url} in ${timeoutMs} ms`)),
    timeoutMs,
  );
  try {
    const res = await fetch(new URL("/api/partitions", url), { signal: ac.signal });
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`);
    return (await res.json()) as PartitionsSnapshot;
  } finally {
    clearTimeout(timer);
  }
}

/** One line for a failed read of weir's API (refused connection, timeout, HTTP error). */
export const describeError = (err: unknown, url: string): string => {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code === "ECONNREFUSED")
    return `cannot reach weir at ${url}: connection refused (is \`weir run\` up?)`;
  const detail = cause?.message ? ` (${cause.message})` : "";
  return `cannot read ${url}: ${err instanceof Error ? err.message : String(err)}${detail}`;
};

export function register(program: Command): void {
  program
    .command("status")
    .description(
      "Show each partition's traffic, CPU and allocation from a running weir's HTTP API: " +
        "offered and served packets/s, drops/s, CPU used, the entitlement weir set and how it reaches the kernel (weight, idle class, cap), the bounds " +
        "(min-max), velocity (packets served per CPU-second) and the last decision's why.",
    )
    .option("--url <url>", "base URL of weir's API", DEFAULT_STATUS_URL)
    .option("--watch", "redraw every second until Ctrl-C", false)
    .action(async (opts: { url: string; watch: boolean }) => {
      const width = () => process.stdout.columns || 120;
      if (!opts.watch) {
        try {
          process.stdout.write(
            `${formatStatus(await fetchStatus(opts.url), { url: opts.url, width: width() })}\n`,
          );
        } catch (err) {
          process.stderr.write(`weir status: ${describeError(err, opts.url)}\n`);
          process.exitCode = 1;
        }
        return;
      }
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      const tty = process.stdout.isTTY === true;
      while (!stop.signal.aborted) {
        let text: string;
        try {
          text = formatStatus(await fetchStatus(opts.url), { url: opts.url, width: width() });
        } catch (err) {
          text = `weir status: ${describeError(err, opts.url)} (retrying every second)`;
        }
        // On a terminal: home the cursor and clear, so the table redraws in place.
        process.stdout.write(tty ? `\x1b[H\x1b[2J${text}\n` : `${text}\n\n`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 1000);
          stop.signal.addEventListener("abort", () => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    });
}
