// `weir run` with its config reloaded on request (SIGHUP): the loop around startManager.
//
// A request reads the config file again. One that fails to load (a YAML or schema mistake, a
// missing file) is logged with the loader's message — field, rule and value — and the running
// manager goes on as it was. One equal to the running config changes nothing. Otherwise the
// running manager is stopped keeping the values it last wrote (run.ts RELOAD), and one is
// started on the new config from what the stopped one kept — its policy memory and the values
// each cgroup had before weir first wrote it, the same as it saves in the state file — so:
// - a partition that stays is managed on from its memory, its found values still the ones of
//   before weir first wrote its cgroup (restored at the end with `onShutdown: restore`);
// - a removed partition's cgroup gets its found values back at the start, with `onShutdown:
//   restore` (kept for a later start otherwise), as at a restart (wiring.ts matchFound);
// - a new partition is managed from the new manager's first cycle.
// If the new config cannot be started (its api.listen taken, say), that is logged and the
// previous config is started again from the same memory. The HTTP API is served again by the
// new manager, whose cycles count from 1 (an EventSource reconnects and gets them).
// A reload of kind "discovery" (discovery.ts: the cgroups `discover:` templates match changed)
// does not read the file: `load` expands the same templates again, and a changed set of
// partitions restarts the manager the same way; it does not count as a config reload in the
// metrics.
import { isDeepStrictEqual } from "node:util";
import type { Logger } from "pino";
import { isWeirError } from "../core/errors.ts";
import type { Config } from "../manager/config.ts";
import { asPersisted, type PersistedState } from "../manager/state-file.ts";
import { RELOAD, type RunningManager, type RuntimeChanges, runtimeChanges } from "./run.ts";

/** What a reload is for: the config file (SIGHUP), or the cgroups `discover:` finds. */
export type ReloadKind = "file" | "discovery";

export interface ReloadingOptions {
  /** The config the first manager runs (loaded by the caller: a mistake there exits). */
  cfg: Config;
  /**
   * "file": reads the config file again (throws a WeirError naming field, rule and value);
   * "discovery": the config in force with what its templates find now. Either with the
   * discovered partitions (discovery.ts).
   */
  load: (kind: ReloadKind) => Promise<Config>;
  logger: Logger;
  /** Stop for good (signals are the caller's): the manager's `onShutdown` applies. */
  signal: AbortSignal;
  /**
   * Starts a manager on `cfg` until `signal` aborts, from `resume` when given, with what the
   * operator changed through the API in the one before (`carry`) (run.ts startManager).
   */
  start: (
    cfg: Config,
    signal: AbortSignal,
    resume: PersistedState | undefined,
    carry?: RuntimeChanges,
  ) => Promise<RunningManager>;
}

export interface Reloading {
  /**
   * Ask for a reload (SIGHUP: "file", the default); one asked for while the first manager
   * starts or a reload is handled is handled after it, and requests meanwhile make one reload
   * (of the file if any of them was).
   */
  reload(kind?: ReloadKind): void;
  /** The manager running now (null before the first has started). */
  current(): RunningManager | null;
  /** The config in force (the first until a reload is taken). */
  config(): Config;
  /** Resolves once the first manager has started; rejects if it cannot start. */
  started: Promise<void>;
  /**
   * Resolves after the last manager stopped (`signal`); rejects if the first cannot start or
   * a loop stops on its own (a crash loop, WEIR_CYCLE_CRASH_LOOP).
   */
  done: Promise<void>;
}

/** Start a manager on `o.cfg`, and another on the config file's content at each reload(). */
export function startReloading(o: ReloadingOptions): Reloading {
  const { logger } = o;
  let cfg = o.cfg;
  let wake: (() => void) | null = null;
  let pending: ReloadKind | null = null;
  const reload = (kind: ReloadKind = "file") => {
    pending = pending === "file" ? "file" : kind;
    wake?.();
  };
  const requested = () =>
    new Promise<void>((resolve) => {
      if (pending !== null) resolve();
      else wake = resolve;
    });

  // one manager: its own abort, which the caller's stop aborts too (not with RELOAD)
  const launch = async (
    c: Config,
    resume: PersistedState | undefined,
    carry: RuntimeChanges | undefined,
  ) => {
    const ac = new AbortController();
    const stop = () => ac.abort(o.signal.reason);
    if (o.signal.aborted) stop();
    else o.signal.addEventListener("abort", stop, { once: true });
    try {
      const running = await o.start(c, ac.signal, resume, carry);
      return { running, ac, forget: () => o.signal.removeEventListener("abort", stop) };
    } catch (err) {
      o.signal.removeEventListener("abort", stop);
      throw err;
    }
  };

  let now: Awaited<ReturnType<typeof launch>> | null = null;
  // when the config in force was read and taken (weir_config_last_reload_success_timestamp_seconds)
  let takenAtMs = Date.now();
  let lastTaken = true;
  const first = launch(cfg, undefined, undefined);
  const loop = async (): Promise<void> => {
    now = await first;
    for (;;) {
      const ended = now.running.done.then(() => "ended" as const);
      const why = await Promise.race([ended, requested().then(() => "reload" as const)]);
      wake = null;
      if (why === "ended") {
        now.forget();
        return;
      }
      const kind = pending ?? "file";
      const byFile = kind === "file";
      pending = null;
      let next: Config;
      try {
        next = await o.load(kind);
      } catch (err) {
        logger.error(
          { code: isWeirError(err) ? err.code : undefined },
          `reload: the config was not reloaded; the running one stays: ${(err as Error).message}`,
        );
        if (byFile) {
          lastTaken = false;
          now.running.metrics.configReload(false, takenAtMs);
        }
        continue;
      }
      if (o.signal.aborted) continue; // stopping: the manager's own loop ends it
      if (isDeepStrictEqual(next, cfg)) {
        if (byFile) {
          logger.info("reload: the config file is unchanged; nothing restarted");
          takenAtMs = Date.now();
          lastTaken = true;
          now.running.metrics.configReload(true, takenAtMs);
        } else logger.debug("discover: the partitions found are unchanged; nothing restarted");
        continue;
      }
      logger.info(
        `${byFile ? "reload: restarting the manager on the new config" : "discover: restarting the manager on the partitions found"} (${next.partitions.length} partition(s); it was ${cfg.partitions.length})`,
      );
      now.ac.abort(RELOAD);
      await now.running.done;
      now.forget();
      // the pause and the bounds changed through the API (kept where the config did not change them)
      const carry = runtimeChanges(now.running);
      // what the stopped manager kept, as its state file has it
      const resume = asPersisted({
        savedAtMs: Date.now(),
        ...now.running.manager.persistentState(),
      });
      if (next.log.level !== cfg.log.level) logger.level = next.log.level;
      try {
        now = await launch(next, resume, carry);
        cfg = next;
        if (byFile) {
          takenAtMs = Date.now();
          lastTaken = true;
        }
        now.running.metrics.configReload(lastTaken, takenAtMs);
      } catch (err) {
        logger.error(
          { code: isWeirError(err) ? err.code : undefined },
          `reload: cannot start on the new config; starting again on the previous one: ${(err as Error).message}`,
        );
        if (next.log.level !== cfg.log.level) logger.level = cfg.log.level;
        now = await launch(cfg, resume, carry);
        if (byFile) lastTaken = false;
        now.running.metrics.configReload(lastTaken, takenAtMs);
      }
    }
  };
  const done = loop();
  const started = first.then(() => undefined);
  started.catch(() => {}); // `done` rejects with the same error: the caller awaits that one
  return { reload, current: () => now?.running ?? null, config: () => cfg, started, done };
}
