// `weir run` with `discover:` templates: the config the manager runs is the file's, with a
// partition for each cgroup the templates find (manager/discover.ts). At start, and at each
// reload, the templates are expanded; between reloads a watcher looks at the cgroup tree when a
// directory it looked in changes (inotify: a cgroup made or removed there is seen within
// milliseconds) and every `discover.intervalMs` besides. When the cgroups the templates match
// are not those last expanded (a container started or ended), it asks for a reload of kind
// "discovery": the file is not read again, the same templates are expanded on what is there
// now, and a changed set of partitions restarts the manager as a reload does (reload.ts: what
// stays is not rewritten, a cgroup gone is forgotten, one that stayed but is no longer matched
// gets its found values back).
import fs from "node:fs";
import type { Logger } from "pino";
import type { Config } from "../manager/config.ts";
import {
  type Discovered,
  discoverNow,
  discoveryRoot,
  foundKey,
  scanTemplates,
} from "../manager/discover.ts";
import { type Reloading, type ReloadingOptions, startReloading } from "./reload.ts";

export interface Discovering {
  /** `base` with the partitions its templates find now; logs what changed since the last call. */
  expand(base: Config): Config;
  /**
   * Look at the cgroup tree for the templates of the config `follow` was last given — when a
   * directory the last look read changes (inotify) and every `discover.intervalMs` — and call
   * `changed` when the cgroups found are not those `expand` last saw, until `signal` aborts.
   * Nothing runs (no timer, no watch) while that config has no templates.
   */
  watch(changed: () => void, signal: AbortSignal): void;
  /** The file's config of the manager now in force (its templates are the ones looked for). */
  follow(base: Config): void;
}

/** How long after a change in a watched directory the tree is scanned (a burst is one scan). */
const WATCH_SETTLE_MS = 20;

const describe = (d: Discovered): string => `${d.name} (${d.cgroup})`;

export function startDiscovering(o: { logger: Logger; onlineCpus: number }): Discovering {
  const { logger } = o;
  let lastKey: string | null = null;
  let managed = new Map<string, Discovered>();
  let refusedBefore = new Map<string, string>();
  // the watcher: the config it follows, and its timer, inotify watches and pending scan
  let following: Config | null = null;
  let stop: AbortSignal | null = null;
  let onChange: () => void = () => {};
  let timer: NodeJS.Timeout | null = null;
  let soon: NodeJS.Timeout | null = null;
  // the directories the last scan looked in, each watched (inotify) so that a cgroup made or
  // removed there is seen at once; the scan every intervalMs stays as the backstop
  const watchers = new Map<string, fs.FSWatcher>();
  const rewatch = (dirs: ReadonlySet<string>) => {
    for (const [dir, w] of watchers)
      if (!dirs.has(dir)) {
        w.close();
        watchers.delete(dir);
      }
    for (const dir of dirs) {
      if (watchers.has(dir)) continue;
      try {
        const w = fs.watch(dir, { persistent: false }, () => {
          // a burst of changes (a runtime making a cgroup and its children) is one scan
          soon ??= setTimeout(() => {
            soon = null;
            scan();
          }, WATCH_SETTLE_MS);
        });
        w.on("error", () => {
          w.close();
          watchers.delete(dir);
        });
        watchers.set(dir, w);
      } catch {
        // gone meanwhile, or no watch left (fs.inotify.max_user_watches): the scans find it
      }
    }
  };
  const scan = () => {
    if (stop === null || stop.aborted) return;
    const cfg = following;
    const dirs = new Set<string>();
    if (cfg?.discover !== undefined) {
      const root = discoveryRoot(cfg.roots.cgroupfs);
      const key = root === null ? "" : foundKey(scanTemplates(root, cfg.discover.partitions, dirs));
      if (key !== lastKey) onChange();
    }
    rewatch(dirs);
  };
  const tick = () => {
    timer = null;
    scan();
    const every = following?.discover?.intervalMs;
    if (every === undefined || stop === null || stop.aborted) return;
    timer = setTimeout(tick, every);
    timer.unref();
  };
  return {
    expand(base) {
      if (base.discover === undefined) {
        lastKey = null;
        managed = new Map();
        refusedBefore = new Map();
        return base;
      }
      const d = discoverNow(base, o.onlineCpus, new Set(managed.keys()));
      lastKey = d.key;
      const now = new Map(d.discovered.map((x) => [x.cgroup, x]));
      const came = d.discovered.filter((x) => managed.get(x.cgroup)?.name !== x.name);
      // no longer matched (its cgroup gone, or a template changed), or renamed; one still
      // matched but refused now (a template changed) is in the warnings below
      const went = [...managed.values()].filter(
        (x) =>
          now.get(x.cgroup)?.name !== x.name && (now.has(x.cgroup) || !d.matched.has(x.cgroup)),
      );
      if (came.length > 0)
        logger.info(
          { discovered: came.map((x) => x.name) },
          `discover: ${came.length} partition(s) found: ${came.map(describe).join(", ")}`,
        );
      if (went.length > 0)
        logger.info(
          { gone: went.map((x) => x.name) },
          `discover: ${went.length} partition(s) no longer found: ${went.map(describe).join(", ")}`,
        );
      const refused = new Map(d.refused.map((r) => [r.cgroup, r.reason]));
      for (const r of d.refused)
        if (refusedBefore.get(r.cgroup) !== r.reason)
          logger.warn(
            { cgroup: r.cgroup },
            `discover: ${r.cgroup} (discover.partitions[${r.template}]) is not managed: ${r.reason}`,
          );
      managed = now;
      refusedBefore = refused;
      return d.config;
    },
    watch(changed, signal) {
      stop = signal;
      onChange = changed;
      signal.addEventListener("abort", () => {
        if (timer !== null) clearTimeout(timer);
        if (soon !== null) clearTimeout(soon);
        rewatch(new Set());
      });
      if (following !== null) tick();
    },
    follow(base) {
      following = base;
      if (stop === null || stop.aborted) return;
      // a config with templates: look now (and on); without: stop looking
      if (timer !== null) clearTimeout(timer);
      tick();
    },
  };
}

/**
 * startReloading on the file's config `base` with its discover: templates expanded: at start, at
 * each reload of the file (`loadFile`), and at each reload the watcher asks for (the base in
 * force, expanded again). What `weir run` runs.
 */
export function startReloadingDiscovered(
  o: Omit<ReloadingOptions, "cfg" | "load"> & {
    base: Config;
    loadFile: () => Promise<Config>;
    onlineCpus: number;
  },
): Reloading {
  const discovering = startDiscovering({ logger: o.logger, onlineCpus: o.onlineCpus });
  // the file's config each expanded config came from: a discovery reload expands the one in force
  const baseOf = new WeakMap<Config, Config>();
  const expand = (b: Config): Config => {
    const c = discovering.expand(b);
    baseOf.set(c, b);
    return c;
  };
  const inForce = () => baseOf.get(running.config()) ?? o.base;
  const running = startReloading({
    cfg: expand(o.base),
    logger: o.logger,
    signal: o.signal,
    // the watcher follows the templates of the manager that started
    start: async (cfg, ...rest) => {
      const r = await o.start(cfg, ...rest);
      discovering.follow(baseOf.get(cfg) ?? o.base);
      return r;
    },
    load: async (kind) => expand(kind === "file" ? await o.loadFile() : inForce()),
  });
  discovering.watch(() => running.reload("discovery"), o.signal);
  return running;
}
