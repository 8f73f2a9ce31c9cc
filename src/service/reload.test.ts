// startReloading on a temporary cgroup v2 tree (no root): a reload with a changed config
// restarts the manager in the process — a partition that stays is not rewritten and keeps what
// weir found, a removed one's cgroup gets its found values back, a new one is written; a config
// with a mistake, or the same config, changes nothing; a config that cannot start gives way to
// the previous one; a stop restores what weir found, as `onShutdown: restore` says.
import fs from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { CycleRecord } from "../core/model.ts";
import { type Config, parseConfig } from "../manager/config.ts";
import { loadConfigFileApart } from "../manager/load-config-apart.ts";
import type { PersistedState } from "../manager/state-file.ts";
import { tempV2Host, writeV2Partition } from "../manager/test-cgroup-tree.ts";
import { parseKeyHex } from "../transport/codec.ts";
import { DatagramAgentChannel } from "../transport/datagram.ts";
import { startReloading } from "./reload.ts";
import { managerStarter, RELOAD, type RunningManager } from "./run.ts";
import { risingReport } from "./test-agent-report.ts";
import { freePort, freeUdpPort } from "./test-ports.ts";

type Line = { level: number; msg: string };

/** cgroup v2 files for a, b and c under weir/ (c's weight 300 as an admin left it), /proc files, 4 CPUs. */
function tree(): { root: string; file: (rel: string) => string; read: (rel: string) => string } {
  const { root, write } = tempV2Host("weir-reload-", 4);
  for (const p of ["a", "b", "c"])
    writeV2Partition(write, `cg/weir/${p}`, "cpu", p === "c" ? 300 : 100);
  return {
    root,
    file: (rel) => path.join(root, rel),
    read: (rel) => fs.readFileSync(path.join(root, rel), "utf8").trim(),
  };
}

/** weir.yaml: these partitions (name and max), every one on weir/<name> counted on lo. */
function yaml(root: string, partitions: Array<[string, string]>, extra: string[] = []): string {
  const roots = {
    cgroupfs: path.join(root, "cg"),
    sysfs: path.join(root, "sys"),
    procfs: path.join(root, "proc"),
  };
  return [
    "intervalMs: 50",
    "capacity: { cpus: 4 }",
    `roots: ${JSON.stringify(roots)}`,
    "onShutdown: restore",
    "placement: { mode: off }",
    ...extra,
    "partitions:",
    ...partitions.map(
      ([n, max]) => `  - { name: ${n}, cgroup: weir/${n}, interfaces: [lo], max: ${max} }`,
    ),
    "",
  ].join("\n");
}

/** weir_config_last_reload_successful and _success_timestamp_seconds of the manager running now. */
async function reloadGauges(r: ReturnType<typeof startReloading>): Promise<[number, number]> {
  const text = await r.current()!.metrics.registry.metrics();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
  return [
    value("weir_config_last_reload_successful"),
    value("weir_config_last_reload_success_timestamp_seconds"),
  ];
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A reloading weir on `cfgFile` (API off), its log lines and records. */
async function reloading(cfgFile: string, o: { api?: boolean } = {}) {
  const lines: Line[] = [];
  const records: CycleRecord[] = [];
  const logger = pino({ level: "info" }, { write: (s: string) => lines.push(JSON.parse(s)) });
  const ac = new AbortController();
  const r = startReloading({
    cfg: await loadConfigFileApart(cfgFile),
    load: () => loadConfigFileApart(cfgFile),
    logger,
    signal: ac.signal,
    start: managerStarter({ logger, api: o.api ?? false, onRecord: (rec) => records.push(rec) }),
  });
  await r.started;
  return { r, ac, lines, records, msgs: () => lines.map((l) => l.msg) };
}

describe("startReloading", () => {
  it("restarts on a changed config: stays unrewritten, removed restored, new written", async () => {
    const t = tree();
    dirs.push(t.root);
    const cfgFile = t.file("weir.yaml");
    fs.writeFileSync(
      cfgFile,
      yaml(t.root, [
        ["a", "400m"],
        ["b", "300m"],
      ]),
    );
    const w = await reloading(cfgFile);
    await until(() => t.read("cg/weir/a/cpu.max") === "40000 100000");
    await until(() => t.read("cg/weir/b/cpu.max") === "30000 100000");
    const aWeight = t.read("cg/weir/a/cpu.weight");
    const bWeight = t.read("cg/weir/b/cpu.weight");
    expect(bWeight).not.toBe("100"); // weir wrote b: its found value is what comes back

    // b removed, c added
    fs.writeFileSync(
      cfgFile,
      yaml(t.root, [
        ["a", "400m"],
        ["c", "200m"],
      ]),
    );
    const before = w.records.length;
    w.r.reload();
    await until(() => t.read("cg/weir/c/cpu.max") === "20000 100000");
    expect(w.msgs()).toContain(
      "reload: restarting the manager on the new config (2 partition(s); it was 2)",
    );
    expect(w.msgs()).toContain("stopped for the reload; kept the last values written");
    // b's cgroup is back to what weir found before it first wrote it
    expect(t.read("cg/weir/b/cpu.max")).toBe("max 100000");
    expect(t.read("cg/weir/b/cpu.weight")).toBe("100");
    // a stayed: its values in force, not rewritten by the new manager
    await until(() => w.records.length > before + 5);
    const after = w.records.slice(before).filter((r) => r.partitions.some((p) => p.id === "c"));
    expect(after.length).toBeGreaterThan(3);
    const aWrites = after.flatMap((r) =>
      r.partitions.filter((p) => p.id === "a").flatMap((p) => p.written),
    );
    expect(aWrites).toEqual([]);
    expect(t.read("cg/weir/a/cpu.max")).toBe("40000 100000");
    expect(t.read("cg/weir/a/cpu.weight")).toBe(aWeight);

    // a stop restores what weir found: a's from before the reload, c's the admin's 300
    w.ac.abort();
    await w.r.done;
    expect(t.read("cg/weir/a/cpu.max")).toBe("max 100000");
    expect(t.read("cg/weir/a/cpu.weight")).toBe("100");
    expect(t.read("cg/weir/c/cpu.max")).toBe("max 100000");
    expect(t.read("cg/weir/c/cpu.weight")).toBe("300");
  });

  it("keeps running the config it has when the file has a mistake or is unchanged", async () => {
    const t = tree();
    dirs.push(t.root);
    const cfgFile = t.file("weir.yaml");
    fs.writeFileSync(cfgFile, yaml(t.root, [["a", "400m"]]));
    const w = await reloading(cfgFile);
    await until(() => t.read("cg/weir/a/cpu.max") === "40000 100000");

    const [, startedAt] = await reloadGauges(w.r);
    expect(startedAt).toBeGreaterThan(Date.now() / 1000 - 60);
    w.r.reload(); // the same file
    await until(() => w.msgs().some((m) => m.startsWith("reload: the config file is unchanged")));
    const [unchangedOk, unchangedAt] = await reloadGauges(w.r);
    expect(unchangedOk).toBe(1);
    expect(unchangedAt).toBeGreaterThanOrEqual(startedAt);

    fs.writeFileSync(
      cfgFile,
      yaml(t.root, [["a", "400m"]], ["intervalMs: 5"]).replace("intervalMs: 50\n", ""),
    );
    const running = w.r.current();
    w.r.reload();
    await until(() => w.lines.some((l) => l.level === 50));
    const error = w.lines.find((l) => l.level === 50)!.msg;
    expect(error).toMatch(/^reload: the config was not reloaded; the running one stays: /);
    expect(error).toContain("intervalMs");
    expect(error).toContain("(rule: too_small): got 5");
    // as Prometheus says a failed reload of its own: 0, and the time of the last one taken
    expect(await reloadGauges(w.r)).toEqual([0, unchangedAt]);
    const cycles = w.records.length;
    await until(() => w.records.length > cycles + 3); // still cycling
    expect(w.r.current()).toBe(running);
    expect(w.msgs().some((m) => m.startsWith("reload: restarting"))).toBe(false);
    w.ac.abort();
    await w.r.done;
    expect(t.read("cg/weir/a/cpu.max")).toBe("max 100000");
  });

  it("keeps a pause and an API change of bounds the new file leaves; drops one it changes", async () => {
    const t = tree();
    dirs.push(t.root);
    const cfgFile = t.file("weir.yaml");
    const two = (bMax: string) =>
      yaml(t.root, [
        ["a", "400m"],
        ["b", bMax],
      ]);
    fs.writeFileSync(cfgFile, two("300m"));
    const w = await reloading(cfgFile);
    await until(() => t.read("cg/weir/b/cpu.max") === "30000 100000");
    const first = w.r.current()!;
    first.manager.updateBounds("a", { maxCpuMillis: 250 });
    first.manager.updateBounds("b", { maxCpuMillis: 200 });
    first.manager.setPaused(true);
    // the file changes b's max, not a's
    fs.writeFileSync(cfgFile, two("350m"));
    w.r.reload();
    await until(
      () =>
        w.r.current() !== first &&
        w.msgs().includes("stopped for the reload; kept the last values written"),
    );
    await until(() => w.msgs().filter((m) => m.startsWith("weir managing")).length === 2);
    const next = w.r.current()!.manager;
    expect(next.paused()).toBe(true);
    const max = (id: string) => next.specs().find((x) => x.id === id)?.maxCpuMillis;
    expect([max("a"), max("b")]).toEqual([250, 350]);
    expect(w.msgs()).toContain("a: keeps the bounds changed through the API (maxCpuMillis 250)");
    expect(w.msgs()).toContain(
      "b: the config changed its bounds: the change made through the API is dropped",
    );
    w.ac.abort();
    await w.r.done;
  });

  it("starts the previous config again when the new one cannot start (its api.listen taken)", async () => {
    const t = tree();
    dirs.push(t.root);
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, "127.0.0.1", r));
    const taken = (holder.address() as AddressInfo).port;
    const free = await freePort();
    try {
      const cfgFile = t.file("weir.yaml");
      fs.writeFileSync(
        cfgFile,
        yaml(t.root, [["a", "400m"]], [`api: { listen: "127.0.0.1:${free}" }`]),
      );
      const w = await reloading(cfgFile, { api: true });
      await until(() => t.read("cg/weir/a/cpu.max") === "40000 100000");
      fs.writeFileSync(
        cfgFile,
        yaml(
          t.root,
          [
            ["a", "400m"],
            ["c", "200m"],
          ],
          [`api: { listen: "127.0.0.1:${taken}" }`],
        ),
      );
      w.r.reload();
      await until(() => w.msgs().filter((m) => m.startsWith("weir managing")).length === 3);
      const error = w.lines.find((l) => l.level === 50)?.msg ?? "";
      expect(error).toMatch(
        new RegExp(
          `^reload: cannot start on the new config; starting again on the previous one: api\\.listen: cannot serve the HTTP API on 127\\.0\\.0\\.1:${taken}: .*\\(rule: listen\\)$`,
        ),
      );
      // the previous config runs again, its API answering; c was never written
      await until(
        () => w.msgs().filter((m) => m.startsWith("HTTP API and dashboard at")).length === 2,
      );
      const res = await fetch(`http://127.0.0.1:${free}/api/partitions`);
      const body = (await res.json()) as { partitions: Array<{ id: string }> };
      expect(body.partitions.map((p) => p.id)).toEqual(["a"]);
      expect((await reloadGauges(w.r))[0]).toBe(0);
      expect(t.read("cg/weir/c/cpu.max")).toBe("max 100000");
      expect(t.read("cg/weir/c/cpu.weight")).toBe("300");
      expect(t.read("cg/weir/a/cpu.max")).toBe("40000 100000");
      w.ac.abort();
      await w.r.done;
      expect(t.read("cg/weir/a/cpu.max")).toBe("max 100000");
    } finally {
      await new Promise((r) => holder.close(r));
    }
  });

  it("goes on taking an agent's reports over UDP after a reload", async () => {
    const t = tree();
    dirs.push(t.root);
    const keyHex = "d4".repeat(32);
    const key = parseKeyHex(keyHex);
    const port = await freeUdpPort();
    const cfgFile = t.file("weir.yaml");
    const agentPartition = `  - { name: u, cgroup: weir/a, source: agent, agent: { key: "${keyHex}" } }`;
    const config = (others: Array<[string, string]>) =>
      `${yaml(t.root, others, [`transport: { udp: { listen: "127.0.0.1:${port}" } }`])}${agentPartition}\n`;
    fs.writeFileSync(cfgFile, config([["b", "300m"]]));
    const w = await reloading(cfgFile);
    const channel = await DatagramAgentChannel.open({
      partitionIndex: 1,
      key,
      manager: { address: "127.0.0.1", port },
      bind: { address: "127.0.0.1" },
    });
    let seq = 0;
    const reporter = setInterval(() => channel.publish(risingReport(1, ++seq, key)), 50);
    try {
      const statusOfU = () => w.records.at(-1)?.partitions.find((p) => p.id === "u")?.status;
      await until(() => statusOfU() === "ok" && w.records.at(-1)!.partitions.length === 2);
      // b removed, c added; u (the agent's) stays
      fs.writeFileSync(cfgFile, config([["c", "200m"]]));
      w.r.reload();
      await until(() => t.read("cg/weir/c/cpu.max") === "20000 100000");
      // the new manager's records (c in them): u's throughput is its agent's reports, taken
      const served = () =>
        w.records
          .filter((r) => r.partitions.some((p) => p.id === "c"))
          .map((r) => r.partitions.find((p) => p.id === "u")!)
          .filter((p) => p.status === "ok" && (p.throughput?.servedPacketsPerSec ?? 0) > 0);
      await until(() => served().length >= 10);
      expect(w.r.current()!.manager.cycleFailures()).toEqual({ total: 0, consecutive: 0 });
    } finally {
      clearInterval(reporter);
      channel.close();
      w.ac.abort();
      await w.r.done;
    }
  });
});

/** A stand-in for startManager: runs until its signal aborts, and says why it stopped. */
function fakeStart(log: string[]) {
  return async (cfg: Config, signal: AbortSignal, resume: PersistedState | undefined) => {
    const name = cfg.partitions.map((p) => p.name).join(",");
    log.push(`start ${name}${resume ? " resumed" : ""}`);
    const done = new Promise<void>((resolve) =>
      signal.addEventListener(
        "abort",
        () => {
          log.push(`stop ${name} ${signal.reason === RELOAD ? "keep" : cfg.onShutdown}`);
          resolve();
        },
        { once: true },
      ),
    );
    return {
      manager: {
        persistentState: () => ({ policyState: { partitions: {} }, found: {} }),
        specs: () => [],
        paused: () => false,
      },
      api: null,
      metrics: { configReload: () => {} },
      configuredSpecs: [],
      done,
    } as unknown as RunningManager;
  };
}

const cfgOf = (names: string[]): Config =>
  parseConfig(
    { partitions: names.map((n) => ({ name: n, cgroup: `weir/${n}`, interfaces: ["lo"] })) },
    "test.yaml",
  );

describe("startReloading's requests and stops", () => {
  it("handles a reload asked for while the first manager starts, after it has started", async () => {
    const log: string[] = [];
    const ac = new AbortController();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const start = fakeStart(log);
    const r = startReloading({
      cfg: cfgOf(["a"]),
      load: async () => cfgOf(["a", "b"]),
      logger: pino({ level: "silent" }),
      signal: ac.signal,
      start: async (cfg, signal, resume) => {
        await gate; // still starting
        return start(cfg, signal, resume);
      },
    });
    r.reload(); // SIGHUP before the first start is done: not lost, and not killing anything
    release();
    await r.started;
    await until(() => log.length === 3);
    expect(log).toEqual(["start a", "stop a keep", "start a,b resumed"]);
    ac.abort();
    await r.done;
    expect(log.at(-1)).toBe("stop a,b restore");
  });

  it("stops for good when SIGTERM comes while the file is read, restoring as configured", async () => {
    const log: string[] = [];
    const ac = new AbortController();
    const r = startReloading({
      cfg: cfgOf(["a"]),
      load: async () => {
        ac.abort(); // SIGTERM while the child reads the file
        return cfgOf(["a", "b"]);
      },
      logger: pino({ level: "silent" }),
      signal: ac.signal,
      start: fakeStart(log),
    });
    await r.started;
    r.reload();
    await r.done;
    expect(log).toEqual(["start a", "stop a restore"]);
  });

  it("makes one more reload of requests that came while one was handled", async () => {
    const log: string[] = [];
    const ac = new AbortController();
    let loads = 0;
    let r: ReturnType<typeof startReloading> | null = null;
    r = startReloading({
      cfg: cfgOf(["a"]),
      load: async () => {
        loads++;
        if (loads === 1) {
          r!.reload(); // two more SIGHUPs while the first is read
          r!.reload();
        }
        return cfgOf(loads === 1 ? ["a", "b"] : ["a", "b", "c"]);
      },
      logger: pino({ level: "silent" }),
      signal: ac.signal,
      start: fakeStart(log),
    });
    await r.started;
    r.reload();
    await until(() => log.includes("start a,b,c resumed"));
    await new Promise((res) => setTimeout(res, 100));
    expect(loads).toBe(2);
    ac.abort();
    await r.done;
    expect(log).toEqual([
      "start a",
      "stop a keep",
      "start a,b resumed",
      "stop a,b keep",
      "start a,b,c resumed",
      "stop a,b,c restore",
    ]);
  });
});
