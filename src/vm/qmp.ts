// A small typed QMP client (QEMU Machine Protocol, JSON lines over a unix socket): the
// greeting, `qmp_capabilities`, then one command at a time matched to its reply by `id`.
// Asynchronous events (DEVICE_DELETED, ACPI_DEVICE_OST, …) are kept for waiters.
// Only the commands weir uses are typed: query-hotpluggable-cpus, device_add/device_del of
// a vCPU, query-cpus-fast, quit. The planning of which vCPU to add or remove is pure.
import { createConnection, type Socket } from "node:net";
import { ErrorCodes, WeirError } from "../core/errors.ts";

export interface HotpluggableCpu {
  type: string;
  "vcpus-count": number;
  props: { "socket-id"?: number; "core-id"?: number; "thread-id"?: number; "node-id"?: number };
  /** QOM path when plugged; absent when the slot is free. */
  "qom-path"?: string;
}

export interface CpuInfoFast {
  "cpu-index": number;
  "qom-path": string;
  "thread-id": number;
  props: HotpluggableCpu["props"];
  target: string;
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

/** The id weir gives a vCPU it hot-plugs: `weir-cpu<core>`. */
export const hotplugCpuId = (coreId: number): string => `weir-cpu${coreId}`;

export type CpuPlan =
  | { action: "none" }
  | { action: "add"; driver: string; id: string; props: HotpluggableCpu["props"] }
  | { action: "remove"; id: string };

/**
 * One step toward `want` vCPUs: plug the free slot with the lowest core id that was never
 * unplugged (`used`: ids weir unplugged from this QEMU — QEMU 7.2 under TCG aborts with
 * "double free or corruption" when a vCPU is plugged again into a slot it was unplugged from,
 * seen on this host 2026-12-01), or unplug the
 * weir-plugged vCPU with the highest. Boot vCPUs (not plugged by weir) are never removed,
 * so `want` below the boot count stops there. One vCPU per step: the guest acknowledges
 * each before the next.
 */
export function planCpuStep(
  slots: readonly HotpluggableCpu[],
  want: number,
  used: ReadonlySet<string> = new Set(),
): CpuPlan {
  const plugged = slots.filter((s) => s["qom-path"] !== undefined);
  const core = (s: HotpluggableCpu) => s.props["core-id"] ?? 0;
  if (plugged.length < want) {
    const free = slots
      .filter((s) => s["qom-path"] === undefined && !used.has(hotplugCpuId(core(s))))
      .sort((a, b) => core(a) - core(b));
    const slot = free[0];
    if (!slot) return { action: "none" };
    return { action: "add", driver: slot.type, id: hotplugCpuId(core(slot)), props: slot.props };
  }
  if (plugged.length > want) {
    const ours = plugged
      .filter((s) => s["qom-path"]!.endsWith(`/${hotplugCpuId(core(s))}`))
      .sort((a, b) => core(b) - core(a));
    const slot = ours[0];
    if (!slot) return { action: "none" };
    return { action: "remove", id: hotplugCpuId(core(slot)) };
  }
  return { action: "none" };
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  command: string;
}

export class QmpError extends WeirError {
  readonly qmpClass: string;
  constructor(command: string, cls: string, desc: string) {
    super(ErrorCodes.TESTBED, `QMP ${command}: ${cls}: ${desc}`);
    this.qmpClass = cls;
  }
}

export class QmpClient {
  private readonly socket: Socket;
  private buf = "";
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly eventWaiters = new Set<(e: QmpEvent) => void>();
  readonly events: QmpEvent[] = [];
  private closedError: Error | null = null;

  private constructor(socket: Socket) {
    this.socket = socket;
  }

  /** Connect, read the greeting, negotiate capabilities. */
  static async connect(path: string, opts: { timeoutMs?: number } = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const socket = createConnection(path);
    const client = new QmpClient(socket);
    const greeting = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new WeirError(ErrorCodes.TESTBED, `QMP ${path}: no greeting within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      socket.once("error", (e) => {
        clearTimeout(timer);
        reject(new WeirError(ErrorCodes.TESTBED, `QMP ${path}: ${e.message}`, { cause: e }));
      });
      client.onGreeting = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => client.onData(chunk));
    socket.on("error", (e) => client.fail(e));
    socket.on("close", () => client.fail(new Error("connection closed")));
    await greeting;
    await client.execute("qmp_capabilities");
    return client;
  }

  private onGreeting: () => void = () => {};

  private onData(chunk: string): void {
    this.buf += chunk;
    for (let nl = this.buf.indexOf("\n"); nl >= 0; nl = this.buf.indexOf("\n")) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line === "") continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // QEMU writes only JSON here; a broken line is not ours to guess at
      }
      if ("QMP" in msg) this.onGreeting();
      else if ("event" in msg) {
        const e = msg as unknown as QmpEvent;
        this.events.push(e);
        if (this.events.length > 1000) this.events.shift();
        for (const w of this.eventWaiters) w(e);
      } else if (typeof msg.id === "string") {
        const p = this.pending.get(msg.id);
        if (!p) continue;
        this.pending.delete(msg.id);
        if ("error" in msg) {
          const err = msg.error as { class?: string; desc?: string };
          p.reject(new QmpError(p.command, err.class ?? "Error", err.desc ?? ""));
        } else p.resolve(msg.return);
      }
    }
  }

  private fail(e: Error): void {
    if (this.closedError) return;
    this.closedError = e;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new WeirError(ErrorCodes.TESTBED, `QMP ${p.command}: ${e.message}`, { cause: e }));
    }
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  /** Run one command; rejects with QmpError on an error reply, WeirError when QEMU is gone. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closedError)
      return Promise.reject(
        new WeirError(ErrorCodes.TESTBED, `QMP ${command}: ${this.closedError.message}`),
      );
    const id = `weir-${this.nextId++}`;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, command });
      this.socket.write(
        `${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`,
      );
    });
  }

  queryHotpluggableCpus(): Promise<HotpluggableCpu[]> {
    return this.execute<HotpluggableCpu[]>("query-hotpluggable-cpus");
  }

  queryCpusFast(): Promise<CpuInfoFast[]> {
    return this.execute<CpuInfoFast[]>("query-cpus-fast");
  }

  deviceAdd(driver: string, id: string, props: Record<string, unknown>): Promise<void> {
    return this.execute<void>("device_add", { driver, id, ...props });
  }

  deviceDel(id: string): Promise<void> {
    return this.execute<void>("device_del", { id });
  }

  /** The first event (already received or coming) for which `match` is true, or null on timeout. */
  waitEvent(match: (e: QmpEvent) => boolean, timeoutMs: number): Promise<QmpEvent | null> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const w = (e: QmpEvent) => {
        if (!match(e)) return;
        clearTimeout(timer);
        this.eventWaiters.delete(w);
        resolve(e);
      };
      const timer = setTimeout(() => {
        this.eventWaiters.delete(w);
        resolve(null);
      }, timeoutMs);
      this.eventWaiters.add(w);
    });
  }

  close(): void {
    this.fail(new Error("closed by weir"));
    this.socket.destroy();
  }
}
