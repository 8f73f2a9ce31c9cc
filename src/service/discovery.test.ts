// startReloadingDiscovered on a temporary cgroup v2 tree (no root), as `weir run` runs it: the
// cgroups a discover: template matches are partitions from the first cycle; one made later is
// managed after the watcher sees it (by inotify, well before the next scan), one removed is dropped, one that stays is not rewritten; a
// discovery reload does not read the file again nor count as a config reload; a refused cgroup
// is logged once; SIGTERM restores what weir found in each cgroup it still manages.
import fs from "node:fs";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { CycleRecord } from "../core/model.ts";
import { loadConfigFileApart } from "../manager/load-config-apart.ts";
import { tempV2Host, writeV2Partition } from "../manager/test-cgroup-tree.ts";
import { startReloadingDiscovered } from "./discovery.ts";
import { managerStarter } from "./run.ts";

type Line = { level: number; msg: string };

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A v2 tree: web (configured), batch cgroups weir/t-x and weir/t-y (y's weight 300, an admin's). */
function tree() {
  const { root, write, roots } = tempV2Host("weir-discovery-", 2);
  dirs.push(root);
  writeV2Partition(write, "cg/weir/web", "cpu");
  writeV2Partition(write, "cg/weir/t-x", "cpu");
  writeV2Partition(write, "cg/weir/t-y", "cpu", 300);
  /** weir.yaml: web, and a discover: with this one template (none: no discover:). */
  const yaml = (template: string | null, intervalMs = 100) =>
    [
      "intervalMs: 50",
      "capacity: { cpus: 2 }",
      `roots: ${JSON.stringify(roots)}`,
      "placement: { mode: off }",
      "partitions:",
      "  - { name: web, cgroup: weir/web, interfaces: [lo], max: 500m }",
      ...(template === null
        ? []
        : ["discover:", `  intervalMs: ${intervalMs}`, "  partitions:", `    - ${template}`]),
      "",
    ].join("\n");
  const file = path.join(root, "weir.yaml");
  return {
    write,
    file,
    yaml,
    read: (rel: string) => fs.readFileSync(path.join(root, "cg", rel), "utf8").trim(),
    remove: (rel: string) => fs.rmSync(path.join(root, "cg", rel), { recursive: true }),
  };
}

async function run(file: string, level = "info") {
  const lines: Line[] = [];
  const records: CycleRecord[] = [];
  const logger = pino({ level }, { write: (s: string) => lines.push(JSON.parse(s)) });
  const ac = new AbortController();
  let fileReads = 0;
  const loadFile = () => {
    fileReads++;
    return loadConfigFileApart(file);
  };
  const r = startReloadingDiscovered({
    base: await loadFile(),
    loadFile,
    onlineCpus: 2,
    logger,
    signal: ac.signal,
    start: managerStarter({ logger, api: false, onRecord: (rec) => records.push(rec) }),
  });
  await r.started;
  const ids = () => records.at(-1)?.partitions.map((p) => p.id) ?? [];
  return {
    r,
    ac,
    lines,
    records,
    ids,
    fileReads: () => fileReads,
    msgs: () => lines.map((l) => l.msg),
  };
}

describe("startReloadingDiscovered", () => {
  it("manages the cgroups a template matches while they are there", async () => {
    const t = tree();
    fs.writeFileSync(t.file, t.yaml("{ cgroup: weir/t-*, name: 'b-{1}', kind: batch }"));
    const w = await run(t.file);
    await until(() => w.records.length > 2, "first cycles");
    expect(w.ids()).toEqual(["web", "b-x", "b-y"]);
    expect(w.msgs()).toContain("discover: 2 partition(s) found: b-x (weir/t-x), b-y (weir/t-y)");
    await until(() => t.read("weir/t-x/cpu.idle") === "1", "b-x in the idle class");
    await until(() => t.read("weir/t-y/cpu.idle") === "1", "b-y in the idle class");
    const webMax = t.read("weir/web/cpu.max");
    expect(webMax).toBe("50000 100000");

    // the file changes, without a SIGHUP: a discovery reload must not read it
    fs.writeFileSync(t.file, t.yaml("{ cgroup: weir/t-*, name: 'other-{1}', kind: batch }"));
    const reads = w.fileReads();
    // a container starts: its cgroup appears
    t.write("cg/weir/t-z/.keep", "");
    writeV2Partition(t.write, "cg/weir/t-z", "cpu");
    const before = w.records.length;
    await until(() => w.ids().includes("b-z"), "b-z managed");
    expect(w.ids()).toEqual(["web", "b-x", "b-y", "b-z"]);
    expect(w.msgs()).toContain("discover: 1 partition(s) found: b-z (weir/t-z)");
    expect(w.msgs()).toContain(
      "discover: restarting the manager on the partitions found (4 partition(s); it was 3)",
    );
    expect(w.fileReads()).toBe(reads);
    await until(() => t.read("weir/t-z/cpu.idle") === "1", "b-z in the idle class");
    // web stayed: its values in force, not written again by the new manager
    await until(() => w.records.length > before + 5, "cycles after the restart");
    const webWrites = w.records
      .slice(before)
      .flatMap((r) => r.partitions.filter((p) => p.id === "web").flatMap((p) => p.written));
    expect(webWrites).toEqual([]);
    expect(t.read("weir/web/cpu.max")).toBe(webMax);
    // not a config reload: nothing was read, so nothing was taken
    const metrics = await w.r.current()!.metrics.registry.metrics();
    expect(metrics).toMatch(/^weir_config_last_reload_successful 1$/m);

    // a container ends: its cgroup goes
    t.remove("weir/t-x");
    await until(() => !w.ids().includes("b-x"), "b-x dropped");
    expect(w.ids()).toEqual(["web", "b-y", "b-z"]);
    expect(w.msgs()).toContain("discover: 1 partition(s) no longer found: b-x (weir/t-x)");
    expect(w.lines.filter((l) => l.level >= 50)).toEqual([]);

    // SIGTERM: what weir found comes back (y's admin weight 300, idle 0)
    w.ac.abort();
    await w.r.done;
    expect(t.read("weir/t-y/cpu.weight")).toBe("300");
    expect(t.read("weir/t-y/cpu.idle")).toBe("0");
    expect(t.read("weir/t-z/cpu.idle")).toBe("0");
    expect(t.read("weir/web/cpu.max")).toBe("max 100000");
  });

  it("sees a cgroup made or removed at once, not at the next scan (inotify)", async () => {
    const t = tree();
    // a scan a minute: only the watch on weir/ can see t-z within the test
    fs.writeFileSync(t.file, t.yaml("{ cgroup: weir/t-*, kind: batch }", 60_000));
    const w = await run(t.file);
    await until(() => w.records.length > 2, "first cycles");
    expect(w.ids()).toEqual(["web", "x", "y"]);
    writeV2Partition(t.write, "cg/weir/t-z", "cpu");
    await until(() => w.ids().includes("z"), "z managed", 5_000);
    await until(() => t.read("weir/t-z/cpu.idle") === "1", "z in the idle class", 5_000);
    t.remove("weir/t-x");
    await until(() => !w.ids().includes("x"), "x dropped", 5_000);
    expect(w.ids()).toEqual(["web", "y", "z"]);
    w.ac.abort();
    await w.r.done;
  });

  it("keeps a pause and the bounds changed through the API across the restart a cgroup causes", async () => {
    const t = tree();
    fs.writeFileSync(t.file, t.yaml("{ cgroup: weir/t-*, kind: batch }"));
    const w = await run(t.file);
    await until(() => t.read("weir/web/cpu.max") === "50000 100000", "web capped at its max");
    const first = w.r.current()!;
    first.manager.updateBounds("web", { maxCpuMillis: 300, weight: 700 });
    await until(() => t.read("weir/web/cpu.max") === "30000 100000", "web at the new max");
    first.manager.setPaused(true);
    // a container starts while weir is paused
    writeV2Partition(t.write, "cg/weir/t-z", "cpu");
    await until(() => w.r.current() !== first && w.ids().includes("z"), "z managed");
    const next = w.r.current()!.manager;
    expect(next.paused()).toBe(true);
    expect(next.specs().find((x) => x.id === "web")).toMatchObject({
      maxCpuMillis: 300,
      weight: 700,
    });
    expect(w.msgs()).toContain(
      "paused through the API before the restart: stays paused (POST /api/resume)",
    );
    expect(w.msgs()).toContain(
      "web: keeps the bounds changed through the API (maxCpuMillis 300, weight 700)",
    );
    // paused: z is recorded, not written; web keeps the cap in force
    const seen = w.records.length;
    await until(() => w.records.length > seen + 5, "cycles while paused");
    expect(t.read("weir/t-z/cpu.idle")).toBe("0");
    expect(t.read("weir/web/cpu.max")).toBe("30000 100000");
    next.setPaused(false);
    await until(() => t.read("weir/t-z/cpu.idle") === "1", "z written once resumed");
    w.ac.abort();
    await w.r.done;
  });

  it("starts looking when a SIGHUP brings discover:, and stops when one takes it away", async () => {
    const t = tree();
    fs.writeFileSync(t.file, t.yaml(null));
    const w = await run(t.file, "debug");
    await until(() => w.records.length > 2, "first cycles");
    expect(w.ids()).toEqual(["web"]);
    fs.writeFileSync(t.file, t.yaml("{ cgroup: weir/t-*, kind: batch }", 60_000));
    w.r.reload();
    await until(() => w.ids().join() === "web,x,y", "x and y found at the reload");
    // the watcher follows the new config: a cgroup made now is seen (inotify)
    writeV2Partition(t.write, "cg/weir/t-z", "cpu");
    await until(() => w.ids().includes("z"), "z managed", 5_000);
    // discover: gone: the found partitions go, their found values back; nothing is looked for
    fs.writeFileSync(t.file, t.yaml(null));
    w.r.reload();
    await until(() => w.ids().join() === "web", "only web");
    expect(t.read("weir/t-y/cpu.weight")).toBe("300");
    writeV2Partition(t.write, "cg/weir/t-w", "cpu");
    const seen = w.records.length;
    await until(() => w.records.length > seen + 10, "cycles after t-w was made");
    expect(w.ids()).toEqual(["web"]);
    expect(w.msgs().filter((m) => m.startsWith("discover: restarting"))).toEqual([
      "discover: restarting the manager on the partitions found (4 partition(s); it was 3)",
    ]);
    // a watcher still on the old templates would have seen t-w and asked for a discovery
    // reload, which finds the config unchanged (said at debug level): none was asked for
    expect(w.msgs()).not.toContain(
      "discover: the partitions found are unchanged; nothing restarted",
    );
    w.ac.abort();
    await w.r.done;
  });

  it("gives a cgroup no longer matched after a SIGHUP its found values back", async () => {
    const t = tree();
    fs.writeFileSync(t.file, t.yaml("{ cgroup: weir/t-*, kind: batch }"));
    const w = await run(t.file);
    await until(() => t.read("weir/t-y/cpu.idle") === "1", "y in the idle class");
    expect(w.ids()).toEqual(["web", "x", "y"]);
    // the template now matches t-x only (`*-x`: what comes before "-x"), named "t"
    fs.writeFileSync(t.file, t.yaml("{ cgroup: 'weir/*-x', kind: batch }"));
    w.r.reload();
    await until(() => w.ids().join() === "web,t", "y dropped, x renamed");
    expect(w.msgs()).toContain(
      "reload: restarting the manager on the new config (2 partition(s); it was 3)",
    );
    // y's cgroup gets what weir found back at once; x's is the same cgroup, managed on
    expect(t.read("weir/t-y/cpu.weight")).toBe("300");
    expect(t.read("weir/t-y/cpu.idle")).toBe("0");
    expect(t.read("weir/t-x/cpu.idle")).toBe("1");
    w.ac.abort();
    await w.r.done;
    expect(t.read("weir/t-x/cpu.idle")).toBe("0");
  });

  it("logs a cgroup it cannot manage once, and manages the others", async () => {
    const t = tree();
    // 1.2 CPUs each on 2 CPUs: the second does not fit
    fs.writeFileSync(t.file, t.yaml("{ cgroup: weir/t-*, kind: batch, min: 1.2 }"));
    const w = await run(t.file);
    await until(() => w.records.length > 2, "first cycles");
    expect(w.ids()).toEqual(["web", "x"]);
    // the watcher looks every 100 ms: the same cgroups found, nothing logged again
    const seen = w.records.length;
    await until(() => w.records.length > seen + 10, "cycles over several scans");
    const refusals = () =>
      w.lines.filter((l) => l.level === 40 && l.msg.startsWith("discover: weir/t-y"));
    expect(refusals().map((l) => l.msg)).toEqual([
      "discover: weir/t-y (discover.partitions[0]) is not managed: its guarantee (1200m) does not fit: the partitions' guarantees take 1200m of the capacity's 2000m",
    ]);
    w.ac.abort();
    await w.r.done;
  });
});
