// The HTTP API and /metrics of a manager (startManager makes one of its own) and, in `weir run`,
// across the manager's restarts (a SIGHUP reload, a change `discover:` found): one server and
// one metrics registry serve whichever manager runs now, through a view that forwards to it, so the API does not close and open again at each
// restart (an event stream stays open, a scrape finds it), and /metrics counters go on from
// where they were instead of starting from 0. The server is started again only when the
// config's `api:` section changed (another address, token or limit).
import type { Logger } from "pino";
import { createMetrics, type WeirMetrics } from "../api/metrics.ts";
import type { RunningApi } from "../api/server.ts";
import type { CycleRecord, PartitionId, PartitionSpec } from "../core/model.ts";
import type { Config } from "../manager/config.ts";
import type {
  ManagerView,
  PartitionAllocation,
  PartitionBoundsChange,
  PartitionMechanisms,
  PartitionPlacement,
  PlacementDecision,
} from "../manager/view.ts";

/**
 * A ManagerView that forwards to the manager running now (`switchTo`); its subscribers stay
 * subscribed across a switch and get every record of each manager in turn (a new manager's
 * cycles count from 1 again: the dashboard takes that as a new run).
 */
export class SwitchingView implements ManagerView {
  #current: ManagerView;
  readonly #listeners = new Set<(record: CycleRecord) => void>();
  #unsubscribe: () => void;
  readonly #dispatch = (record: CycleRecord): void => {
    for (const l of this.#listeners) l(record);
  };

  constructor(first: ManagerView) {
    this.#current = first;
    this.#unsubscribe = first.subscribe(this.#dispatch);
  }

  /** From now on, forward to `next`. */
  switchTo(next: ManagerView): void {
    if (next === this.#current) return;
    this.#unsubscribe();
    this.#current = next;
    this.#unsubscribe = next.subscribe(this.#dispatch);
  }

  get current(): ManagerView {
    return this.#current;
  }

  placementDecision(): PlacementDecision | null {
    return this.#current.placementDecision?.() ?? null;
  }
  allocations(): Record<PartitionId, PartitionAllocation | null> {
    return this.#current.allocations?.() ?? {};
  }
  placements(): Record<PartitionId, PartitionPlacement> {
    return this.#current.placements?.() ?? {};
  }
  mechanisms(): Record<PartitionId, PartitionMechanisms | null> {
    return this.#current.mechanisms?.() ?? {};
  }
  specs(): PartitionSpec[] {
    return this.#current.specs();
  }
  recentRecords(): CycleRecord[] {
    return this.#current.recentRecords();
  }
  subscribe(listener: (record: CycleRecord) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  redactedConfig(): unknown {
    return this.#current.redactedConfig();
  }
  paused(): boolean {
    return this.#current.paused();
  }
  setPaused(paused: boolean): void {
    this.#current.setPaused(paused);
  }
  updateBounds(id: PartitionId, change: PartitionBoundsChange): PartitionSpec {
    return this.#current.updateBounds(id, change);
  }
  ready(): boolean {
    return this.#current.ready();
  }
}

export interface ApiHost {
  /** The metrics of every manager it serves, one registry (its counters go on across restarts). */
  readonly metrics: WeirMetrics;
  /**
   * Serve `manager`: the API the config's `api:` section (`section`; null: none) describes
   * shows it from now on. The server is kept while the section is what it was, else closed and
   * started on the new one (a listen that fails throws, with no server left).
   * `started`: whether a server was started now (the caller logs where).
   */
  serve(
    manager: ManagerView,
    section: Config["api"] | null,
  ): Promise<{ api: RunningApi | null; started: boolean }>;
  /** Close the server (the last manager stopped). */
  close(): Promise<void>;
}

export function createApiHost(o: { logger: Logger }): ApiHost {
  const metrics = createMetrics();
  let view: SwitchingView | null = null;
  let api: RunningApi | null = null;
  let apiKey = "";
  const close = async () => {
    const a = api;
    api = null;
    apiKey = "";
    if (a) await a.close();
  };
  return {
    metrics,
    async serve(manager, section) {
      if (view === null) {
        view = new SwitchingView(manager);
        metrics.attach(view);
      } else view.switchTo(manager);
      const wanted = section ?? null;
      const key = wanted === null ? "" : JSON.stringify(wanted);
      if (api !== null && key === apiKey) return { api, started: false };
      await close();
      if (wanted === null) return { api: null, started: false };
      // loaded only when an API is served (hono, @hono/node-server, the dashboard's routes)
      const { createApi } = await import("../api/app.ts");
      const { parseListen, serveApi } = await import("../api/server.ts");
      const { host, port } = parseListen(wanted.listen);
      const app = createApi({
        view,
        registry: metrics.registry,
        maxEventClients: wanted.maxEventClients,
        ...(wanted.token ? { token: wanted.token } : {}),
        // every change made through the API, one line each: the operator's audit trail
        onChange: (change, message) => o.logger.info({ api: change }, message),
      });
      api = await serveApi(app, { host, port, maxConnections: wanted.maxConnections });
      apiKey = key;
      return { api, started: true };
    },
    close,
  };
}
