// Running a manager as a service: the loop, the HTTP API and metrics, agents' transports, the
// state file and logs (signals are the caller's). Shared by `weir run` and `weir demo`.
import type { Logger } from "pino";
import type { WeirMetrics } from "../api/metrics.ts";
import type { RunningApi } from "../api/server.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { CycleRecord, PartitionId, PartitionSpec } from "../core/model.ts";
import { openAgentTransports } from "../manager/agents.ts";
import type { Config } from "../manager/config.ts";
import { formatCpuList, startCpusShortfalls } from "../manager/cpus-check.ts";
import type { Manager } from "../manager/manager.ts";
import { type PersistedState, saveState } from "../manager/state-file.ts";
import type { PartitionBoundsChange } from "../manager/view.ts";
import { buildManager, keepCountersForNextManager, type ManagerParts } from "../manager/wiring.ts";
import { crossCheck } from "../transport/source.ts";
import { type ApiHost, createApiHost } from "./api-host.ts";
import { PartitionErrorLog } from "./error-log.ts";

export interface RunOptions {
  cfg: Config;
  logger: Logger;
  dryRun?: boolean;
  /** Serve the HTTP API (config api.enabled, default on when `api:` is present). */
  api?: boolean;
  /** Stop when this aborts (signals are wired by the caller). */
  signal: AbortSignal;
  onRecord?: (r: CycleRecord) => void;
  hooks?: ManagerParts;
  /** Save the state file every this many ms (default 1000). */
  saveEveryMs?: number;
  /** Resume from what a manager stopped for a reload kept, not from the state file (reload.ts). */
  resume?: PersistedState;
  /** What an operator changed through the API in the manager stopped for a reload (reload.ts). */
  carry?: RuntimeChanges;
  /**
   * The API server and metrics, kept across the manager's restarts (api-host.ts): this manager
   * is served by it and does not close it when it stops. Without it, the manager has a host of
   * its own, closed at the end.
   */
  host?: ApiHost;
}

/** The bounds a change through the API moves (PATCH /api/partitions/:id). */
const BOUND_FIELDS = ["minCpuMillis", "maxCpuMillis", "weight", "importance"] as const;

/**
 * What an operator changed through the API in a running manager, which a restart for a reload
 * carries over (startManager's `carry`): the pause, and each partition's bounds moved from
 * what the config gave, with what the config gave then.
 */
export interface RuntimeChanges {
  paused: boolean;
  bounds: Array<{ id: PartitionId; configured: PartitionSpec; current: PartitionSpec }>;
}

const sameBounds = (a: PartitionSpec, b: PartitionSpec): boolean =>
  BOUND_FIELDS.every((f) => a[f] === b[f]);

/** What `r`'s operator changed through the API (its pause, the bounds moved). */
export function runtimeChanges(r: RunningManager): RuntimeChanges {
  const configured = new Map(r.configuredSpecs.map((s) => [s.id, s]));
  const bounds: RuntimeChanges["bounds"] = [];
  for (const current of r.manager.specs()) {
    const given = configured.get(current.id);
    if (given && !sameBounds(given, current))
      bounds.push({ id: current.id, configured: given, current });
  }
  return { paused: r.manager.paused(), bounds };
}

/**
 * The reason `signal` aborts with to stop a manager for a reload (reload.ts): it then keeps the
 * values it last wrote, whatever `onShutdown` says, and the manager started on the new config
 * goes on from them.
 */
export const RELOAD = "weir: reload";

export interface RunningManager {
  manager: Manager;
  api: RunningApi | null;
  /** Its /metrics (the reload says there how the last reading of the config went). */
  metrics: WeirMetrics;
  /** The partitions' specs as its config gives them (runtimeChanges compares with them). */
  configuredSpecs: PartitionSpec[];
  /** Resolves after the loop stopped and shutdown (restore/keep) ran. */
  done: Promise<void>;
}

/**
 * What the operator changed through the API before a reload, on the manager started for it:
 * the pause, and each partition's bounds where the new config gives what the old one did (else
 * the file's stand, logged); bounds that no longer fit beside the others are dropped, warned.
 */
function applyRuntimeChanges(
  manager: Manager,
  configuredSpecs: readonly PartitionSpec[],
  carry: RuntimeChanges,
  logger: Logger,
): void {
  if (carry.paused) {
    manager.setPaused(true);
    logger.info("paused through the API before the restart: stays paused (POST /api/resume)");
  }
  const configuredNow = new Map(configuredSpecs.map((s) => [s.id, s]));
  for (const c of carry.bounds) {
    const given = configuredNow.get(c.id);
    if (given === undefined) continue;
    if (!sameBounds(given, c.configured)) {
      logger.info(
        { partition: c.id },
        `${c.id}: the config changed its bounds: the change made through the API is dropped`,
      );
      continue;
    }
    const change: Partial<Record<(typeof BOUND_FIELDS)[number], number>> = {};
    for (const f of BOUND_FIELDS) if (c.current[f] !== given[f]) change[f] = c.current[f];
    try {
      manager.updateBounds(c.id, change as PartitionBoundsChange);
      logger.info(
        { partition: c.id, change },
        `${c.id}: keeps the bounds changed through the API (${Object.entries(change)
          .map(([k, v]) => `${k} ${v}`)
          .join(", ")})`,
      );
    } catch (err) {
      logger.warn(
        { partition: c.id },
        `${c.id}: the bounds changed through the API no longer fit beside the others, the config's stand: ${(err as Error).message}`,
      );
    }
  }
}

/**
 * How many partitions a restore rewrote: a partition's cgroup files and its cpuset come back
 * as two results (Manager.shutdown), and count as one partition.
 */
export function rewrittenPartitions(
  restored: ReadonlyArray<{ partition: string; written: readonly string[] }>,
): number {
  return new Set(restored.filter((r) => r.written.length > 0).map((r) => r.partition)).size;
}

/**
 * What startReloading (reload.ts) starts each manager with: startManager on `base`'s options,
 * with the config, stop signal, what the stopped manager kept and what the operator changed.
 */
export const managerStarter =
  (base: Omit<RunOptions, "cfg" | "signal" | "resume" | "carry">) =>
  (
    cfg: Config,
    signal: AbortSignal,
    resume: PersistedState | undefined,
    carry?: RuntimeChanges,
  ): Promise<RunningManager> =>
    startManager({
      ...base,
      cfg,
      signal,
      ...(resume ? { resume } : {}),
      ...(carry ? { carry } : {}),
    });

export async function startManager(o: RunOptions): Promise<RunningManager> {
  const { cfg, logger } = o;
  const host = o.host ?? createApiHost({ logger });
  const { metrics } = host;
  const errorLog = new PartitionErrorLog();
  const now = o.hooks?.now ?? (() => performance.timeOrigin + performance.now());
  // wire timestamps are whole milliseconds (the codec refuses a fraction): the transports get
  // the same clock, floored
  const agents = await openAgentTransports(cfg, () => Math.floor(now()));
  const wired = buildManager(cfg, {
    dryRun: o.dryRun ?? false,
    now,
    ...(o.resume ? { resumeState: o.resume } : {}),
    ...(agents ? { reports: agents, crossCheck: (h, a) => crossCheck(h, a, 0.25) } : {}),
    ...o.hooks,
    onChange: (dec, d) => {
      logger.info(
        {
          partition: dec.partition,
          cpuMillis: d.cpuMillis,
          previousCpuMillis: dec.previousCpuMillis,
          weight: d.weight,
        },
        `${dec.partition}: ${dec.previousCpuMillis}m -> ${d.cpuMillis}m: ${dec.why}`,
      );
      o.hooks?.onChange?.(dec, d);
    },
    onPartitionError: (p, err, status, phase) => {
      if (phase === "apply") metrics.actuatorError(p, err.code);
      // a warning for the first of a run of the same error, not one per cycle (error-log.ts)
      const first = errorLog.report(p, status, err.code);
      (first ? logger.warn : logger.debug).call(
        logger,
        { partition: p, code: err.code, status },
        `${p}: ${status}: ${err.code}: ${err.message}${first ? "" : " (again)"}`,
      );
      o.hooks?.onPartitionError?.(p, err, status, phase);
    },
    onCycleError: (err, consecutive) => {
      metrics.cycleFailed(err.code);
      logger.error(
        { code: err.code, consecutive, max: cfg.maxConsecutiveCycleFailures },
        `cycle failed (${consecutive} in a row, stopping at ${cfg.maxConsecutiveCycleFailures}); the values last written stay: ${err.code}: ${err.message}`,
      );
      o.hooks?.onCycleError?.(err, consecutive);
    },
    onCapacityChange: (c) => {
      const cpus = c.cpus === null ? "unknown CPUs" : `CPUs ${formatCpuList(c.cpus)}`;
      const fields = {
        capacityCpuMillis: c.toCpuMillis,
        configuredCpuMillis: c.configuredCpuMillis,
        cpus: c.cpus,
        unknown: c.unknown,
      };
      if (c.unknown.length > 0)
        logger.warn(
          fields,
          `capacity ${c.toCpuMillis}m, the configured, stands: the CPUs that partition(s) ${c.unknown.join(", ")} can reach could not be read (no readable cpuset, online CPU list or thread affinity, or the read failed)`,
        );
      else
        logger.info(
          fields,
          c.toCpuMillis < c.configuredCpuMillis
            ? `capacity ${c.fromCpuMillis}m -> ${c.toCpuMillis}m: the partitions can reach only ${cpus} (cpusets and thread affinity), 1000m each, of the configured ${c.configuredCpuMillis}m`
            : c.fromCpuMillis === c.toCpuMillis
              ? `capacity ${c.toCpuMillis}m as configured: the partitions can reach ${cpus} (cpusets and thread affinity)`
              : `capacity ${c.fromCpuMillis}m -> ${c.toCpuMillis}m: the partitions can reach ${cpus} again`,
        );
      o.hooks?.onCapacityChange?.(c);
    },
    onPlacementChange: (c) => {
      const where = Object.entries(c.placed)
        .filter(([, cpus]) => cpus !== null)
        .map(([id, cpus]) => `${id} on CPU ${formatCpuList(cpus!)}`);
      logger.info(
        { placed: c.placed },
        where.length > 0
          ? `placement: ${where.join(", ")} (${c.reason})`
          : `placement: nothing placed: ${c.reason}`,
      );
    },
    // the cpusets' values are on disk before placement first writes them (save is below)
    onPlacementOpened: () => save(),
    onSensorNote: (p, message) => logger.info({ partition: p }, message),
    onPlacementProblem: (p, err, kind) => {
      logger.warn(
        { partition: p, code: err.code },
        kind === "unavailable"
          ? err.message
          : `${p}: placing it failed: ${err.code}: ${err.message}`,
      );
    },
  });
  const { manager } = wired;
  logger.info(
    {
      capacityCpuMillis: wired.capacityCpuMillis,
      backend: wired.backendName,
      intervalMs: cfg.intervalMs,
    },
    `weir managing ${cfg.partitions.length} partition(s), capacity ${wired.capacityCpuMillis}m, every ${cfg.intervalMs} ms, ${wired.backendName === "" ? "no backend yet" : `backend ${wired.backendName}`}${o.dryRun ? " (dry run: nothing is written)" : ""}`,
  );
  if (wired.stateNote) logger.info(wired.stateNote);
  for (const note of [...wired.foundNotes, ...wired.cpusetNotes])
    if (note.restored) logger.info(note.message);
    else logger.warn(note.message);
  if (wired.placement.why && wired.placement.mode !== "spread") logger.info(wired.placement.why);
  // Capacity the partitions' CPUs cannot give (capacity.cpus above the online CPUs, a cpuset
  // smaller than capacity): a warning per partition; reading the cpusets never throws. With
  // placement in force, a placed partition's cpuset as found before weir first wrote it (the
  // state file's) is judged where it was wider: a cpuset narrowed by a killed run is weir's own.
  for (const w of startCpusShortfalls(cfg, wired))
    logger.warn(
      {
        partition: w.partition,
        cpus: w.cpus,
        cpusCpuMillis: w.cpusCpuMillis,
        capacityCpuMillis: w.capacityCpuMillis,
        maxCpuMillis: w.maxCpuMillis,
      },
      w.message,
    );
  // Say which mechanism expresses batch on this kernel (the idle class needs Linux >= 5.15).
  const mech = manager.mechanisms();
  for (const spec of manager.specs()) {
    const m = mech[spec.id];
    if (!m) continue;
    if (spec.kind === "batch")
      logger.info(
        { partition: spec.id, idleClass: m.idleClass, burst: m.burst },
        m.idleClass
          ? `${spec.id}: batch runs in the kernel's idle class (cpu.idle = 1)`
          : `${spec.id}: batch runs at the minimum weight (this kernel has no cpu.idle)`,
      );
    else if (!m.burst && (spec.capped || spec.maxCpuMillis < wired.capacityCpuMillis))
      logger.info(
        { partition: spec.id, burst: false },
        `${spec.id}: its cap has no CFS burst (this kernel has no burst file)`,
      );
  }

  if (o.carry) applyRuntimeChanges(manager, wired.configuredSpecs, o.carry, logger);

  let api: RunningApi | null = null;
  manager.subscribe((r) => {
    // a partition ok again after a run of errors: said once, with how many cycles repeated it
    // One pass over the record's partitions, not a search per open streak: with 10,000
    // partitions all failing (the cgroup root gone, the fd limit) a search each was 10^8 steps.
    if (errorLog.size > 0) {
      const c = r.columns;
      const n = c !== undefined ? c.ids.length : r.partitions.length;
      for (let k = 0; k < n && errorLog.size > 0; k++) {
        const id = c !== undefined ? c.ids[k]! : r.partitions[k]!.id;
        const repeats = errorLog.observe(
          id,
          c !== undefined ? c.status[k]! : r.partitions[k]!.status,
        );
        if (repeats !== null)
          logger.info(
            { partition: id, repeats },
            `${id}: ok again${repeats > 0 ? ` (the error above repeated ${repeats} more time(s), logged at debug level)` : ""}`,
          );
      }
    }
  });
  manager.subscribe((r) => {
    // the manager's records: from their columns (no entries made), and only when one has an error
    const c = r.columns;
    if (c !== undefined) {
      if (c.errors === null) return;
      for (let k = 0; k < c.size; k++) {
        const e = c.errors[k];
        if (e && (c.written[k]?.length ?? 0) === 0 && c.status[k] !== "ok")
          metrics.actuatorError(c.ids[k]!, e.code, 0);
      }
      return;
    }
    for (const p of r.partitions)
      if (p.error && p.written.length === 0 && p.status !== "ok")
        metrics.actuatorError(p.id, p.error.code, 0);
  });
  // the host's view forwards this manager's records to the metrics, and its server (when `api:`
  // is served) shows this manager
  try {
    const served = await host.serve(
      manager,
      o.api !== false && cfg.api?.enabled !== false ? (cfg.api ?? null) : null,
    );
    api = served.api;
    if (api && served.started) logger.info(`HTTP API and dashboard at ${api.url}/`);
  } catch (err) {
    // nothing was written yet: close what was opened and say which field, as a config error
    agents?.close();
    manager.shutdown("keep");
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `api.listen: cannot serve the HTTP API on ${cfg.api?.listen}: ${(err as Error).message} (rule: listen)`,
      { cause: err },
    );
  }
  if (o.onRecord) manager.subscribe(o.onRecord);
  let agentsDone: Promise<void> = Promise.resolve();
  if (agents) {
    agentsDone = agents.start(o.signal);
    for (const s of agents.sources) logger.info(`agent reports over ${s.transport}`);
    // count accepted reports, and rejected ones by reason (the sources keep running totals)
    const seen: Record<string, number> = {};
    let acceptedSeen = 0;
    manager.subscribe(() => {
      const acceptedNow = agents.accepted();
      if (acceptedNow > acceptedSeen) metrics.reportAccepted(acceptedNow - acceptedSeen);
      acceptedSeen = acceptedNow;
      for (const [reason, total] of Object.entries(agents.rejected())) {
        const d = total - (seen[reason] ?? 0);
        if (d > 0) metrics.reportRejected(reason, d);
        seen[reason] = total;
      }
    });
  }

  const save = () => {
    if (!cfg.stateFile) return;
    try {
      saveState(cfg.stateFile, { savedAtMs: Date.now(), ...manager.persistentState() });
    } catch (err) {
      logger.warn(`cannot save state file ${cfg.stateFile}: ${(err as Error).message}`);
    }
  };
  save(); // the found values are on disk before the first write
  const saver = setInterval(save, o.saveEveryMs ?? 1000);

  const done = (async () => {
    try {
      await manager.start(o.signal);
    } finally {
      clearInterval(saver);
      save();
      const reloading = o.signal.reason === RELOAD;
      const mode = reloading ? "keep" : cfg.onShutdown;
      // for a reload the next manager takes up the partitions' eBPF counters, still attached
      if (reloading && !o.dryRun) keepCountersForNextManager();
      const restored = o.dryRun ? [] : manager.shutdown(mode);
      if (o.dryRun) manager.shutdown("keep");
      for (const r of restored) {
        if (r.error)
          logger.warn(`${r.partition}: restore failed: ${r.error.code}: ${r.error.message}`);
      }
      logger.info(
        reloading
          ? "stopped for the reload; kept the last values written"
          : mode === "restore"
            ? `stopped; restored the values found at start (${rewrittenPartitions(restored)} partition(s) rewritten)`
            : "stopped; kept the last values written",
      );
      // a host given stays for the next manager (its owner closes it at the end)
      if (!o.host) await host.close();
      await agentsDone;
      agents?.close();
    }
  })();
  return { manager, api, metrics, configuredSpecs: wired.configuredSpecs, done };
}
