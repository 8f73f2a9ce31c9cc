// startManager with agents over UDP on loopback (no root: a dry run on the v1 fixture tree of
// src/actuators/fixtures, read once and never written): the directive sent back after each accepted report reaches the agent and no cycle
// fails. Before: the service's clock has fractions of a millisecond, the directive encoder
// refused them, and every cycle after the first report failed until the crash-loop bound
// stopped weir (found by test/faults/agents.faults.test.ts).

import fs from "node:fs";
import path from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { isWeirError } from "../core/errors.ts";
import { type Config, parseConfig } from "../manager/config.ts";
import { killedPlacementTree } from "../manager/test-cgroup-tree.ts";
import type { ManagerParts } from "../manager/wiring.ts";
import { parseKeyHex } from "../transport/codec.ts";
import { DatagramAgentChannel } from "../transport/datagram.ts";
import { rewrittenPartitions, startManager } from "./run.ts";
import { risingReport } from "./test-agent-report.ts";

describe("startManager with UDP agents", () => {
  it("sends each agent partition its directive and fails no cycle", async () => {
    const keyHex = "c3".repeat(32);
    const key = parseKeyHex(keyHex);
    const port = 30_000 + (process.pid % 5000);
    const cfg = parseConfig(
      {
        intervalMs: 50,
        capacity: { cpus: 1 },
        roots: { cgroupfs: path.resolve(import.meta.dirname, "../actuators/fixtures/cgroup-v1") },
        transport: { udp: { listen: `127.0.0.1:${port}` } },
        partitions: [{ name: "a", cgroup: "weir/web", source: "agent", agent: { key: keyHex } }],
      },
      "test.yaml",
    );
    const ac = new AbortController();
    const running = await startManager({
      cfg,
      logger: pino({ level: "silent" }),
      signal: ac.signal,
      api: false,
      dryRun: true,
    });
    const channel = await DatagramAgentChannel.open({
      partitionIndex: 0,
      key,
      manager: { address: "127.0.0.1", port },
      bind: { address: "127.0.0.1" },
    });
    let directive = null;
    const end = Date.now() + 5000;
    for (let seq = 1; directive === null && Date.now() < end; seq++) {
      channel.publish(risingReport(0, seq, key));
      await new Promise((r) => setTimeout(r, 50));
      directive = channel.pollDirective();
    }
    const failures = running.manager.cycleFailures();
    const last = running.manager.recentRecords().at(-1)?.partitions[0];
    ac.abort();
    await running.done;
    channel.close();
    expect(last?.status, JSON.stringify(last)).toBe("ok");
    expect(directive).toMatchObject({ partitionIndex: 0, weight: expect.any(Number) });
    expect(failures).toEqual({ total: 0, consecutive: 0 });
  });
});

describe("startManager with an API address it cannot listen on", () => {
  it("throws a WeirError naming api.listen, the address and the cause (no stack trace in the CLI)", async () => {
    // an address held by another socket on loopback: EADDRINUSE. Before: node's own error
    // escaped, and `weir run` printed a stack trace and exited 1.
    const { createServer } = await import("node:net");
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, "127.0.0.1", r));
    const port = (holder.address() as { port: number }).port;
    const cfg = parseConfig(
      {
        capacity: { cpus: 1 },
        roots: { cgroupfs: path.resolve(import.meta.dirname, "../actuators/fixtures/cgroup-v1") },
        api: { listen: `127.0.0.1:${port}` },
        partitions: [{ name: "a", cgroup: "weir/web", interfaces: ["v0"] }],
      },
      "test.yaml",
    );
    try {
      const err = await startManager({
        cfg,
        logger: pino({ level: "silent" }),
        signal: new AbortController().signal,
        dryRun: true,
      }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isWeirError(err)).toBe(true);
      expect((err as Error).message).toMatch(
        new RegExp(
          `^api\\.listen: cannot serve the HTTP API on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE.* \\(rule: listen\\)$`,
        ),
      );
    } finally {
      holder.close();
    }
  });
});

describe("startManager logs every change made through the HTTP API", () => {
  it("one info line per accepted pause, resume and PATCH, none for a refused one", async () => {
    // before: POST /api/pause, /api/resume and PATCH /api/partitions/:id changed weir and left
    // no line in its log
    const token = "test-token-0123456789abcdef";
    const cfg = parseConfig(
      {
        capacity: { cpus: 1 },
        roots: { cgroupfs: path.resolve(import.meta.dirname, "../actuators/fixtures/cgroup-v1") },
        api: { listen: "127.0.0.1:0", token },
        partitions: [{ name: "a", cgroup: "weir/web", interfaces: ["v0"], weight: 100 }],
      },
      "test.yaml",
    );
    const lines: Array<{ level: number; msg: string; api?: unknown }> = [];
    const logger = pino({ level: "info" }, { write: (s: string) => lines.push(JSON.parse(s)) });
    const ac = new AbortController();
    const running = await startManager({ cfg, logger, signal: ac.signal, dryRun: true });
    try {
      const url = running.api!.url;
      const send = (method: string, route: string, body?: unknown, auth = token) =>
        fetch(`${url}${route}`, {
          method,
          headers: { Authorization: `Bearer ${auth}`, "Content-Type": "application/json" },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      expect((await send("POST", "/api/pause")).status).toBe(200);
      expect((await send("PATCH", "/api/partitions/a", { weight: 300 })).status).toBe(200);
      expect((await send("PATCH", "/api/partitions/a", { weight: 0 })).status).toBe(400);
      expect((await send("POST", "/api/resume", undefined, "wrong-token-wrong")).status).toBe(401);
      expect((await send("POST", "/api/resume")).status).toBe(200);
    } finally {
      ac.abort();
      await running.done;
    }
    const api = lines.filter((l) => l.msg.startsWith("API: "));
    expect(api.map((l) => [l.level, l.msg])).toEqual([
      [30, "API: paused: sampling and recording go on, nothing is applied until resumed"],
      [30, "API: a: bounds changed: weight 100 -> 300"],
      [30, "API: resumed: directives are applied again"],
    ]);
    expect(api[1]!.api).toEqual({
      kind: "bounds",
      partition: "a",
      fields: { weight: { from: 100, to: 300 } },
    });
  });
});

/**
 * The cgroup v2 tree a run killed while placing left (killedPlacementTree: p1 placed on CPU 0,
 * the state file saying its cpuset.cpus was found empty), and a config on it with
 * `placement.mode` as given. Removed after `body`.
 */
async function afterKilledPlacement(
  mode: "spread" | "off",
  body: (t: {
    root: string;
    cfg: Config;
    stateFile: string;
    cpusetOfP1: () => string;
  }) => Promise<void>,
): Promise<void> {
  const tree = killedPlacementTree();
  try {
    const cfg = parseConfig(
      {
        capacity: { cpus: 4 },
        roots: tree.roots,
        stateFile: tree.stateFile,
        placement: { mode },
        partitions: [
          { name: "p1", cgroup: "weir/p1", interfaces: ["veth-p1"] },
          { name: "hog", cgroup: "weir/hog", kind: "batch" },
        ],
      },
      "test.yaml",
    );
    await body({ root: tree.root, cfg, stateFile: tree.stateFile, cpusetOfP1: tree.cpusetOfP1 });
  } finally {
    tree.remove();
  }
}

/** startManager on `cfg` for one cycle, then stopped; its log lines. */
async function oneCycle(cfg: Config): Promise<Array<{ level: number; msg: string }>> {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: "info" }, { write: (s: string) => lines.push(JSON.parse(s)) });
  const ac = new AbortController();
  const running = await startManager({
    cfg,
    logger,
    signal: ac.signal,
    api: false,
    onRecord: () => ac.abort(),
  });
  await running.done;
  return lines;
}

describe("startManager restarted after a kill with placement in force", () => {
  it("does not warn that a placed partition's cpuset is narrow when the narrowing is weir's own", async () => {
    // Before: "p1: runs on CPUs 0 (...) but may be entitled up to the capacity 4000m ... widen
    // its cpuset" at every restart after a SIGKILL: the start-up check read the cpuset as the
    // killed run's placement left it, not as the state file says it was found.
    await afterKilledPlacement("spread", async ({ cfg, cpusetOfP1 }) => {
      const lines = await oneCycle(cfg);
      expect(lines.some((l) => /^placement: p1 on CPU/.test(l.msg))).toBe(true);
      expect(lines.filter((l) => /runs on CPU/.test(l.msg)).map((l) => l.msg)).toEqual([]);
      // and the orderly stop restored what the state file says was found
      expect(cpusetOfP1()).toBe("\n");
    });
  });
});

describe("startManager restarted after a kill with placement no longer in force", () => {
  it("writes back the cpusets the killed run placed, and the state file forgets them", async () => {
    // Before: nothing wrote p1's cpuset back (only placement, now off, opens cpusets), even with
    // onShutdown: restore, and the first save dropped foundCpusets: the found value was lost.
    await afterKilledPlacement("off", async ({ cfg, stateFile, cpusetOfP1 }) => {
      const lines = await oneCycle(cfg);
      expect(cpusetOfP1()).toBe("\n");
      expect(lines.map((l) => l.msg)).toContain(
        'p1: placement is not in force; its cpuset.cpus, narrowed by a killed run, is back to "" as found',
      );
      const saved = JSON.parse(fs.readFileSync(stateFile, "utf8")) as { foundCpusets?: unknown };
      expect(saved.foundCpusets).toBeUndefined();
    });
  });

  it("keeps in the state file a found cpuset it cannot write back", async () => {
    await afterKilledPlacement("off", async ({ cfg, stateFile }) => {
      // a partition of the killed run's config that this config no longer has
      const state = JSON.parse(fs.readFileSync(stateFile, "utf8")) as Record<string, unknown>;
      fs.writeFileSync(
        stateFile,
        JSON.stringify({ ...state, foundCpusets: { p1: "", gone: "1-2" } }),
      );
      const lines = await oneCycle(cfg);
      expect(lines.some((l) => l.level === 40 && /^gone: .*not written back/.test(l.msg))).toBe(
        true,
      );
      const saved = JSON.parse(fs.readFileSync(stateFile, "utf8")) as {
        foundCpusets?: unknown;
        foundCpusetsUnmanaged?: unknown;
      };
      expect(saved.foundCpusets).toBeUndefined();
      expect(saved.foundCpusetsUnmanaged).toEqual([{ partition: "gone", cpus: "1-2" }]);
    });
  });
});

describe("startManager restarted after a kill with a placed partition moved or removed", () => {
  /** cgroup v2 dir weir/<name> under `root` as the v2 backend and sensors read it. */
  const cgroupDir = (root: string, name: string, cpus: string) => {
    const dir = path.join(root, "cg/weir", name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "cgroup.controllers"), "cpuset cpu\n");
    fs.writeFileSync(path.join(dir, "cpu.weight"), "100\n");
    fs.writeFileSync(path.join(dir, "cpu.max"), "max 100000\n");
    fs.writeFileSync(path.join(dir, "cpu.idle"), "0\n");
    fs.writeFileSync(
      path.join(dir, "cpu.stat"),
      "usage_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
    );
    fs.writeFileSync(path.join(dir, "cgroup.threads"), "");
    fs.writeFileSync(path.join(dir, "cpuset.cpus"), `${cpus}\n`);
    fs.writeFileSync(path.join(dir, "cpuset.cpus.effective"), `${cpus || "0-3"}\n`);
  };
  const config = (
    t: { roots: Config["roots"]; stateFile: string },
    onShutdown: "keep" | "restore",
    web2: string | null,
  ) =>
    parseConfig(
      {
        capacity: { cpus: 4 },
        roots: t.roots,
        stateFile: t.stateFile,
        onShutdown,
        placement: { mode: "spread" },
        partitions: [
          { name: "p1", cgroup: "weir/p1", interfaces: ["veth-p1"] },
          ...(web2 ? [{ name: "web2", cgroup: web2, interfaces: ["veth-web2"] }] : []),
          { name: "hog", cgroup: "weir/hog", kind: "batch" },
        ],
      },
      "test.yaml",
    );

  it("gives a found cpuset to the partition on its cgroup and writes back that of a cgroup left", async () => {
    // Before: found cpusets went by partition name. web2, moved from weir/web2-old to weir/web2
    // (pinned to CPU 2 by an admin), took its old cgroup's found value: placed, and its SIGTERM
    // wrote that value into weir/web2 (the admin's pin lost); weir/web2-old kept the killed
    // run's placement for good.
    const tree = killedPlacementTree();
    try {
      fs.rmSync(tree.stateFile);
      tree.write("cg/weir/p1/cpuset.cpus", "\n");
      cgroupDir(tree.root, "web2-old", "");
      // the first run opens both cpusets and saves what they held, then stops keeping its values
      await oneCycle(config(tree, "keep", "weir/web2-old"));
      // as a run killed while placing leaves them; an admin pins the new cgroup to CPU 2
      tree.write("cg/weir/p1/cpuset.cpus", "0\n");
      tree.write("cg/weir/web2-old/cpuset.cpus", "1\n");
      cgroupDir(tree.root, "web2", "2");
      const lines = await oneCycle(config(tree, "restore", "weir/web2"));
      const cpus = (d: string) =>
        fs.readFileSync(path.join(tree.root, "cg/weir", d, "cpuset.cpus"), "utf8");
      expect(cpus("web2")).toBe("2\n");
      expect(cpus("web2-old")).toBe("\n");
      expect(cpus("p1")).toBe("\n");
      expect(lines.map((l) => l.msg)).toContain(
        'web2: no partition is on its cgroup weir/web2-old now: the cpuset.cpus "" weir found there before it first wrote it is back (cpuset.cpus written)',
      );
      const saved = JSON.parse(fs.readFileSync(tree.stateFile, "utf8")) as {
        foundCpusets?: Record<string, unknown>;
        foundCpusetsUnmanaged?: unknown;
      };
      expect(saved.foundCpusets?.p1).toEqual({ cpus: "", cgroup: "weir/p1", actuator: "cgroup" });
      expect(saved.foundCpusets?.web2).toBeUndefined(); // narrowed by the admin: not placed
      expect(saved.foundCpusetsUnmanaged).toBeUndefined();
    } finally {
      tree.remove();
    }
  });

  it("keeps a removed partition's found cpuset with onShutdown: keep, and forgets it once its cgroup is gone", async () => {
    const tree = killedPlacementTree();
    try {
      fs.rmSync(tree.stateFile);
      tree.write("cg/weir/p1/cpuset.cpus", "\n");
      cgroupDir(tree.root, "web2", "");
      cgroupDir(tree.root, "web3", "");
      await oneCycle(config(tree, "keep", "weir/web2"));
      const first = JSON.parse(fs.readFileSync(tree.stateFile, "utf8")) as {
        foundCpusets?: Record<string, unknown>;
      };
      expect(first.foundCpusets?.web2).toEqual({
        cpus: "",
        cgroup: "weir/web2",
        actuator: "cgroup",
      });
      // web2 removed from the config; a found cpuset of weir/web3, whose cgroup is then removed
      tree.write("cg/weir/web2/cpuset.cpus", "1\n");
      fs.writeFileSync(
        tree.stateFile,
        JSON.stringify({
          ...first,
          foundCpusetsUnmanaged: [
            { partition: "web3", cpus: "", cgroup: "weir/web3", actuator: "cgroup" },
          ],
        }),
      );
      const kept = await oneCycle(config(tree, "keep", null));
      expect(
        kept.filter(
          (l) =>
            l.level === 40 &&
            /^web[23]: no partition is on its cgroup .*; the cpuset.cpus "" weir found there is not written back \(onShutdown is keep\)/.test(
              l.msg,
            ),
        ),
      ).toHaveLength(2);
      expect(fs.readFileSync(path.join(tree.root, "cg/weir/web2/cpuset.cpus"), "utf8")).toBe("1\n");
      const saved = JSON.parse(fs.readFileSync(tree.stateFile, "utf8")) as {
        foundCpusetsUnmanaged?: Array<{ partition: string }>;
      };
      expect(saved.foundCpusetsUnmanaged?.map((e) => e.partition).sort()).toEqual(["web2", "web3"]);
      // restarted with onShutdown: restore: web2's written back, web3's (its cgroup gone) forgotten
      fs.rmSync(path.join(tree.root, "cg/weir/web3"), { recursive: true });
      const lines = await oneCycle(config(tree, "restore", null));
      expect(fs.readFileSync(path.join(tree.root, "cg/weir/web2/cpuset.cpus"), "utf8")).toBe("\n");
      expect(lines.map((l) => l.msg)).toContain(
        'web3: no partition is on its cgroup weir/web3 now, and the cgroup is gone: the cpuset.cpus "" weir found there is forgotten',
      );
      const after = JSON.parse(fs.readFileSync(tree.stateFile, "utf8")) as {
        foundCpusetsUnmanaged?: unknown;
      };
      expect(after.foundCpusetsUnmanaged).toBeUndefined();
    } finally {
      tree.remove();
    }
  });
});

describe("startManager restarted after a kill with partitions renamed, moved or removed", () => {
  it("gives found values to the partition on their cgroup and writes back those of cgroups left", async () => {
    // Before: the state file's found values went by partition name alone. A partition renamed
    // on the same cgroup took the killed run's writes as found (its orderly stop left them); one
    // moved to another cgroup was restored with its old cgroup's values (an admin's cap on the
    // new one lifted); and the values of a removed or moved partition's old cgroup were dropped
    // at the first save: its cgroup kept the killed run's cap for good.
    await afterKilledPlacement("off", async ({ root, cfg, stateFile }) => {
      const cg = (rel: string) => path.join(root, "cg/weir", rel);
      const write = (rel: string, text: string) => fs.writeFileSync(cg(rel), text);
      const found = (partition: string, cgroup: string) => ({
        partition,
        cgroup,
        actuator: "cgroup",
        values: { "cpu.max": "max 100000", "cpu.weight": "100", "cpu.idle": "0" },
      });
      // as the killed run left them: p1 (then called "web") and "tenant" capped by it; hog,
      // then on weir/hog-old, capped by it there, and weir/hog capped by an admin at 2 CPUs
      write("p1/cpu.max", "50000 100000\n");
      write("p1/cpu.weight", "5000\n");
      for (const d of ["tenant", "hog-old"]) {
        fs.mkdirSync(cg(d));
        write(`${d}/cpu.max`, "30000 100000\n");
        write(`${d}/cpu.weight`, "3000\n");
        write(`${d}/cpu.idle`, "0\n");
      }
      write("hog/cpu.max", "200000 100000\n");
      const state = JSON.parse(fs.readFileSync(stateFile, "utf8")) as Record<string, unknown>;
      fs.writeFileSync(
        stateFile,
        JSON.stringify({
          ...state,
          found: {
            web: found("web", "weir/p1"),
            tenant: found("tenant", "weir/tenant"),
            hog: found("hog", "weir/hog-old"),
            gone: found("gone", "weir/gone"),
          },
        }),
      );
      const lines = await oneCycle(cfg); // onShutdown: restore
      const read = (rel: string) => fs.readFileSync(cg(rel), "utf8").trim();
      // the renamed partition's cgroup is back to what weir found there, not to its own writes
      expect([read("p1/cpu.max"), read("p1/cpu.weight")]).toEqual(["max 100000", "100"]);
      // the moved one's new cgroup to its own values (the admin's cap), not its old cgroup's
      expect(read("hog/cpu.max")).toBe("200000 100000");
      // the cgroups no partition is on now: written back at start
      for (const d of ["tenant", "hog-old"])
        expect([read(`${d}/cpu.max`), read(`${d}/cpu.weight`)]).toEqual(["max 100000", "100"]);
      expect(lines.map((l) => l.msg)).toContain(
        "tenant: no partition is on its cgroup weir/tenant now: the values weir found there before it first wrote them are back (cpu.max, cpu.weight written)",
      );
      const saved = JSON.parse(fs.readFileSync(stateFile, "utf8")) as {
        found: Record<string, { cgroup?: string; values: Record<string, string> }>;
        foundUnmanaged?: unknown;
      };
      expect(Object.keys(saved.found).sort()).toEqual(["hog", "p1"]);
      expect(saved.found.p1?.cgroup).toBe("weir/p1");
      expect(saved.found.p1?.values["cpu.max"]).toBe("max 100000");
      expect(saved.found.hog?.cgroup).toBe("weir/hog");
      expect(saved.found.hog?.values["cpu.max"]).toBe("200000 100000");
      // written back, or its cgroup gone: nothing left over
      expect(saved.foundUnmanaged).toBeUndefined();
    });
  });

  it("with onShutdown: keep, keeps a removed partition's found values in the state file", async () => {
    await afterKilledPlacement("off", async ({ root, stateFile }) => {
      const tree = path.join(root, "cg/weir/tenant");
      fs.mkdirSync(tree);
      fs.writeFileSync(path.join(tree, "cpu.max"), "30000 100000\n");
      fs.writeFileSync(path.join(tree, "cpu.weight"), "3000\n");
      const tenant = {
        partition: "tenant",
        cgroup: "weir/tenant",
        actuator: "cgroup",
        values: { "cpu.max": "max 100000", "cpu.weight": "100" },
      };
      const state = JSON.parse(fs.readFileSync(stateFile, "utf8")) as Record<string, unknown>;
      fs.writeFileSync(stateFile, JSON.stringify({ ...state, found: { tenant } }));
      const cfg = parseConfig(
        {
          capacity: { cpus: 4 },
          roots: { cgroupfs: path.join(root, "cg"), sysfs: path.join(root, "sys") },
          stateFile,
          onShutdown: "keep",
          placement: { mode: "off" },
          partitions: [{ name: "hog", cgroup: "weir/hog", kind: "batch" }],
        },
        "test.yaml",
      );
      const lines = await oneCycle(cfg);
      expect(fs.readFileSync(path.join(tree, "cpu.max"), "utf8")).toBe("30000 100000\n");
      expect(lines.some((l) => l.level === 40 && /^tenant: .*onShutdown is keep/.test(l.msg))).toBe(
        true,
      );
      const saved = JSON.parse(fs.readFileSync(stateFile, "utf8")) as { foundUnmanaged?: unknown };
      expect(saved.foundUnmanaged).toEqual([tenant]);
    });
  });
});

describe("startManager logs a run of the same partition error once, and its end", () => {
  it("one warning, the repeats at debug level, one 'ok again' line counting them", async () => {
    // error-log.ts is tested on its own; here through startManager: the writes of batch
    // partition "hog" (its sensors on the temporary tree, its actuator one that refuses every
    // write while `refusing` is set, as the kernel's EBUSY) fail for the first cycles, then go
    // through.
    const FAILING = 4;
    let refusing = true;
    const open = (t: { partition: string }) => ({
      partition: t.partition,
      snapshot: () => ({ partition: t.partition, values: {} }),
      apply: () =>
        refusing
          ? {
              partition: t.partition,
              written: [],
              error: {
                code: "WEIR_APPLY_FAILED",
                message: "weir/hog/cpu.idle: EBUSY",
                retryable: true,
              },
            }
          : { partition: t.partition, written: [] },
      restore: () => ({ partition: t.partition, written: [] }),
      close: () => {},
    });
    const refuser: NonNullable<ManagerParts["actuators"]>[string] = {
      name: "refuser",
      handles: ["cgroup"],
      capabilities: {
        cap: true,
        weight: true,
        idle: true,
        burst: false,
        cpuCount: false,
        capPeriod: false,
        cpuset: false,
      },
      open,
      openDryRun: open,
    };
    const tree = killedPlacementTree();
    try {
      const cfg = parseConfig(
        {
          intervalMs: 50,
          capacity: { cpus: 4 },
          roots: tree.roots,
          partitions: [{ name: "hog", cgroup: "weir/hog", kind: "batch", actuator: "recording" }],
        },
        "test.yaml",
      );
      const lines: Array<{ level: number; msg: string; repeats?: number }> = [];
      const logger = pino({ level: "debug" }, { write: (s: string) => lines.push(JSON.parse(s)) });
      const ac = new AbortController();
      const statuses: string[] = [];
      const running = await startManager({
        cfg,
        logger,
        signal: ac.signal,
        api: false,
        hooks: { actuators: { recording: refuser } },
        onRecord: (r) => {
          statuses.push(r.partitions[0]!.status);
          if (statuses.length === FAILING) refusing = false;
          if (statuses.length === FAILING + 3) ac.abort();
        },
      });
      await running.done;
      // the writes were refused for the first FAILING cycles' writes, then off
      expect(statuses.slice(0, FAILING)).toEqual(Array(FAILING).fill("error"));
      expect(statuses.slice(FAILING)).toContain("ok");
      const about = lines.filter((l) => /^hog: (error|ok again)/.test(l.msg));
      const warnings = about.filter((l) => l.level === 40);
      const again = about.filter((l) => l.level === 20);
      const okAgain = about.filter((l) => l.level === 30);
      expect(warnings.map((l) => l.msg)).toEqual([
        "hog: error: WEIR_APPLY_FAILED: weir/hog/cpu.idle: EBUSY",
      ]);
      expect(again.length).toBe(FAILING - 1);
      for (const l of again) expect(l.msg).toMatch(/^hog: error: WEIR_APPLY_FAILED: .* \(again\)$/);
      expect(okAgain.map((l) => [l.msg, l.repeats])).toEqual([
        [
          `hog: ok again (the error above repeated ${FAILING - 1} more time(s), logged at debug level)`,
          FAILING - 1,
        ],
      ]);
      // in that order: the warning, its repeats, then the end of the run
      expect(about.map((l) => l.level)).toEqual([40, ...Array(FAILING - 1).fill(20), 30]);
    } finally {
      tree.remove();
    }
  });
});

describe("rewrittenPartitions", () => {
  it("counts a partition whose cgroup files and cpuset were both restored once", () => {
    // 4 partitions, 3 of them placed: "7 partition(s) rewritten" before
    const restored = [
      { partition: "p1", written: ["cpu.shares"] },
      { partition: "p2", written: ["cpu.cfs_quota_us", "cpu.shares"] },
      { partition: "p3", written: [] },
      { partition: "hog1", written: ["cpu.idle"] },
      { partition: "p1", written: ["cpuset.cpus"] },
      { partition: "p2", written: ["cpuset.cpus"] },
      { partition: "p3", written: ["cpuset.cpus"] },
    ];
    expect(rewrittenPartitions(restored)).toBe(4);
    expect(rewrittenPartitions([])).toBe(0);
  });
});
