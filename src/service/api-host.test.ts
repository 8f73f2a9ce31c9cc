// The API host across the manager's restarts, as `weir run` uses it (startReloading with every
// manager served by one host), on a temporary cgroup v2 tree (no root): an event stream opened
// before a reload goes on with the new manager's records (its cycles from 1 again), /metrics
// counters go on instead of starting from 0, the server moves when api.listen changes, and the
// host's close ends it. SwitchingView's forwarding on its own, with stand-in views.
import fs from "node:fs";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { CycleRecord } from "../core/model.ts";
import { loadConfigFileApart } from "../manager/load-config-apart.ts";
import { tempV2Host, writeV2Partition } from "../manager/test-cgroup-tree.ts";
import type { ManagerView } from "../manager/view.ts";
import { createApiHost, SwitchingView } from "./api-host.ts";
import { startReloading } from "./reload.ts";
import { managerStarter } from "./run.ts";
import { freePort } from "./test-ports.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const end = Date.now() + 10_000;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A v2 tree with weir/a and weir/b, and weir.yaml's text for these partitions on `port`. */
function tree() {
  const { root, write, roots } = tempV2Host("weir-api-host-", 2);
  dirs.push(root);
  for (const p of ["a", "b"]) writeV2Partition(write, `cg/weir/${p}`, "cpu");
  const file = path.join(root, "weir.yaml");
  const yaml = (names: string[], port: number) =>
    [
      "intervalMs: 50",
      "capacity: { cpus: 2 }",
      `roots: ${JSON.stringify(roots)}`,
      "placement: { mode: off }",
      `api: { listen: "127.0.0.1:${port}" }`,
      "partitions:",
      ...names.map((n) => `  - { name: ${n}, cgroup: weir/${n}, interfaces: [lo] }`),
      "",
    ].join("\n");
  return { file, yaml };
}

/** The cycles of the `event: cycle` frames an open /api/events stream has sent so far. */
function readEvents(url: string) {
  const cycles: number[] = [];
  let ended = false;
  const ac = new AbortController();
  const done = (async () => {
    const res = await fetch(url, { signal: ac.signal });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      const frames = text.split("\n\n");
      text = frames.pop() ?? "";
      for (const f of frames) {
        const m = /^event: cycle\ndata: (.*)$/m.exec(f);
        if (m) cycles.push((JSON.parse(m[1]!) as CycleRecord).cycle);
      }
    }
  })()
    .catch(() => {})
    .finally(() => {
      ended = true;
    });
  return { cycles, ended: () => ended, stop: () => ac.abort(), done };
}

const cyclesTotal = async (base: string): Promise<number> => {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(/^weir_cycles_total (\S+)$/m.exec(text)?.[1]);
};

describe("createApiHost with startReloading", () => {
  it("keeps one server and one /metrics across a reload; moves when api.listen changes", async () => {
    const t = tree();
    const port = await freePort();
    fs.writeFileSync(t.file, t.yaml(["a"], port));
    const logger = pino({ level: "silent" });
    const host = createApiHost({ logger });
    const ac = new AbortController();
    const r = startReloading({
      cfg: await loadConfigFileApart(t.file),
      load: () => loadConfigFileApart(t.file),
      logger,
      signal: ac.signal,
      start: managerStarter({ logger, host }),
    });
    await r.started;
    const base = `http://127.0.0.1:${port}`;
    const events = readEvents(`${base}/api/events`);
    await until("events", () => (events.cycles.length >= 3 ? true : undefined));
    const before = await until("cycles counted", async () => {
      const n = await cyclesTotal(base);
      return n >= 3 ? n : undefined;
    });
    const first = r.current();

    // b added: the manager restarts, the server and the stream stay
    fs.writeFileSync(t.file, t.yaml(["a", "b"], port));
    r.reload();
    await until("b listed", async () => {
      const body = (await (await fetch(`${base}/api/partitions`)).json()) as {
        partitions: Array<{ id: string }>;
      };
      return body.partitions.some((p) => p.id === "b") ? true : undefined;
    });
    expect(r.current()).not.toBe(first);
    // the same stream got the new manager's records: its cycles start from 1 again
    await until("a new run on the stream", () =>
      events.cycles.some((c, i) => i > 0 && c < events.cycles[i - 1]!) ? true : undefined,
    );
    expect(events.ended()).toBe(false);
    expect(await cyclesTotal(base)).toBeGreaterThan(before);

    // api.listen changes: the server moves, the old stream ends
    const other = await freePort();
    fs.writeFileSync(t.file, t.yaml(["a", "b"], other));
    r.reload();
    const moved = `http://127.0.0.1:${other}`;
    await until("the API on its new address", async () =>
      (await fetch(`${moved}/healthz`).catch(() => null))?.ok ? true : undefined,
    );
    await events.done;
    expect(events.ended()).toBe(true);
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    expect(await cyclesTotal(moved)).toBeGreaterThan(before);

    ac.abort();
    await r.done;
    await host.close();
    await expect(fetch(`${moved}/healthz`)).rejects.toThrow();
  });
});

/** A stand-in view: its specs, pause and subscribers. */
function standIn(id: string) {
  const listeners = new Set<(r: CycleRecord) => void>();
  let paused = false;
  const view = {
    specs: () => [{ id, minCpuMillis: 0, maxCpuMillis: 100, weight: 1, importance: 3 }],
    recentRecords: () => [],
    subscribe: (l: (r: CycleRecord) => void) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    redactedConfig: () => ({ id }),
    paused: () => paused,
    setPaused: (p: boolean) => {
      paused = p;
    },
    updateBounds: () => {
      throw new Error("not here");
    },
    ready: () => true,
  } as unknown as ManagerView;
  const emit = (cycle: number) => {
    for (const l of listeners) l({ cycle } as CycleRecord);
  };
  return { view, emit, listeners };
}

describe("SwitchingView", () => {
  it("forwards to the view switched to, and keeps its subscribers across a switch", () => {
    const a = standIn("a");
    const b = standIn("b");
    const v = new SwitchingView(a.view);
    const got: number[] = [];
    const unsubscribe = v.subscribe((r) => got.push(r.cycle));
    a.emit(1);
    v.setPaused(true);
    expect(a.view.paused()).toBe(true);
    v.switchTo(b.view);
    expect(a.listeners.size).toBe(0); // the old view no longer calls it
    a.emit(2);
    b.emit(1);
    expect(got).toEqual([1, 1]);
    expect(v.specs().map((s) => s.id)).toEqual(["b"]);
    expect(v.redactedConfig()).toEqual({ id: "b" });
    expect(v.paused()).toBe(false);
    expect(v.placements()).toEqual({});
    unsubscribe();
    b.emit(2);
    expect(got).toEqual([1, 1]);
  });
});
