// Root, real cgroup v1: `weir run` with agents over the shared-memory transport, and a hostile
// agent (src/transport/shm-hostile-agent.ts, a real second process) that scribbles 0xFF over
// its whole slot holding its lock odd, tries to shrink and grow the slot's file, and maps past
// its slot. What must hold: the manager keeps running (no SIGBUS), the honest partition keeps
// being accepted and managed, the hostile partition decays to its guarantee, truncation is
// refused, an overreaching agent only hurts itself, and a restarted honest agent is accepted.
// Needs finding 9 (one sealed page per partition); until that code is in, the rows say so.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { CycleRecord } from "../../src/core/model.ts";
import { alive } from "../e2e/leftovers.ts";
import {
  CPU_ROOT,
  cpuValues,
  hasV1,
  isRoot,
  makeCgroup,
  pidsWithArg,
  REPO,
  removeCgroups,
  sleep,
  startWeir,
  stopWeir,
  until,
  type Weir,
} from "./harness.ts";
import { checkAllocations } from "./invariants.ts";
import { recordRow } from "./reliability.ts";

const FILE = "test/faults/shm.faults.test.ts";
const HOSTILE = path.join(REPO, "src/transport/shm-hostile-agent.ts");
/** Finding 9's per-partition slots bring the hostile agent; the old shared table does not. */
const PENDING = !existsSync(HOSTILE);
const PENDING_REASON =
  "not run: pending finding 9 (per-partition shared-memory slots, truncation-safe scan): on the current code every agent maps the whole table read-write and a truncated table kills the manager's scan with SIGBUS";
const P = `weirf-${process.pid}-shm`;
const KEYS = ["c1".repeat(32), "d2".repeat(32)];
const dir = mkdtempSync(path.join(tmpdir(), "weirf-shm-"));
const SLOTS = path.join("/dev/shm", `weirf-${process.pid}-slots`);
const children: ChildProcess[] = [];
let weir: Weir | null = null;

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(SLOTS, { recursive: true, force: true });
  for (const c of children) if (c.pid && alive(c.pid)) c.kill("SIGKILL");
  if (weir) await stopWeir(weir, "SIGKILL");
  await sleep(200); // killed agents leave their cgroups' task lists
  removeCgroups([`${P}/a`, `${P}/b`, P]);
});

const rows = {
  truncated: {
    id: "09-shm-truncated",
    file: FILE,
    test: "hostile shared-memory agent",
    fault: "a hostile agent truncates (and grows) its shared-memory slot, and maps past it",
    mustHold:
      "the resize is refused; the manager keeps scanning (no SIGBUS); only the overreaching agent dies",
  },
  scribbled: {
    id: "10-shm-scribbled",
    file: FILE,
    test: "hostile shared-memory agent",
    fault: "a hostile agent scribbles 0xFF over its whole slot, its lock held odd",
    mustHold:
      "the honest partition stays accepted and managed; the hostile one decays to its guarantee; restore on SIGTERM; nothing left (whether an honest agent can take the scribbled slot back is recorded, not required)",
  },
};

if (PENDING) {
  recordRow({ ...rows.truncated, observed: PENDING_REASON, holds: null });
  recordRow({ ...rows.scribbled, observed: PENDING_REASON, holds: null });
}

const agentLogs: string[] = [];

function startAgent(i: number): ChildProcess {
  const keyFile = path.join(dir, `key-${i}`);
  writeFileSync(keyFile, KEYS[i]!, { mode: 0o600 });
  const c = spawn(
    process.execPath,
    [
      path.join(REPO, "bin/weir.js"),
      "agent",
      "--index",
      String(i),
      "--transport",
      "shm",
      "--shm-path",
      SLOTS,
      "--key-file",
      keyFile,
      "--interval-ms",
      "100",
      "--cgroup",
      "none",
      "--interfaces",
      "lo",
      "--json",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const at = agentLogs.push("") - 1;
  c.stderr!.on("data", (d: Buffer) => {
    agentLogs[at] += d.toString();
  });
  children.push(c);
  return c;
}

function hostile(slot: number, mode: "scribble" | "overreach") {
  const c = spawn(process.execPath, ["--import", "tsx", HOSTILE, SLOTS, String(slot), mode], {
    cwd: REPO,
    stdio: ["pipe", "pipe", "pipe"],
  });
  children.push(c);
  let out = "";
  c.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
  });
  c.stderr!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    c.on("exit", (code, signal) => r({ code, signal })),
  );
  return { child: c, out: () => out, exited };
}

const part = (r: CycleRecord | null, id: string) => r?.partitions.find((p) => p.id === id);

describe.skipIf(!isRoot || !hasV1 || PENDING)(
  "shared memory under a hostile agent (root, v1)",
  () => {
    it("hostile shared-memory agent", async () => {
      makeCgroup(`${P}/a`);
      makeCgroup(`${P}/b`);
      const found = cpuValues(`${P}/a`);
      const cfg = path.join(dir, "weir.yaml");
      writeFileSync(
        cfg,
        [
          "capacity: { cpus: 2 }",
          "staleAfterMs: 1000",
          `transport: { shm: { path: ${SLOTS} } }`,
          "partitions:",
          `  - { name: a, cgroup: ${P}/a, source: agent, agent: { key: ${KEYS[0]} }, min: 100m, max: 400m }`,
          `  - { name: b, cgroup: ${P}/b, source: agent, agent: { key: ${KEYS[1]} }, min: 100m, max: 300m }`,
          "",
        ].join("\n"),
      );
      const w = startWeir(cfg);
      weir = w;
      const quota = (id: string) => cpuValues(`${P}/${id}`).quota;
      // an agent started before the manager published its slot stops at once ("cannot open")
      const published = await until(
        () => existsSync(path.join(SLOTS, "0")) && existsSync(path.join(SLOTS, "1")),
        30_000,
      );
      expect(published, w.stderr()).toBe(true);
      let a = startAgent(0);
      startAgent(1);
      const bothOk = () => ["a", "b"].every((id) => part(w.last(), id)?.status === "ok");
      expect(await until(() => bothOk() && quota("a") === 40_000, 30_000), w.stderr()).toBe(true);

      // the hostile agent takes a's slot: scribble, lock held odd, resize attempts
      a.kill("SIGKILL");
      const h = hostile(0, "scribble");
      await until(() => h.out().includes("scribbled"), 20_000);
      const tried = JSON.parse(h.out().trim().split("\n")[0] ?? "{}") as {
        scribbled?: number;
        shrink?: string;
        grow?: string;
      };
      const cyclesBefore = w.records.length;
      const aStale = await until(() => {
        const p = part(w.last(), "a");
        // held to its 100m guarantee by weight; its cap stays its configured max (400m)
        return p?.status === "stale" && p.directive?.cpuMillis === 100 && quota("a") === 40_000;
      }, 10_000);
      await sleep(2000);
      const during = w.records.slice(cyclesBefore);
      const bOk = during.length > 10 && during.every((r) => part(r, "b")?.status === "ok");
      const managerAlive = w.child.exitCode === null && w.child.signalCode === null;
      h.child.stdin!.end();
      await h.exited;

      // an agent that maps past its slot: the kernel stops it, not the manager
      const o = hostile(0, "overreach");
      const over = await o.exited;
      const managerAliveAfterOverreach = w.child.exitCode === null && w.child.signalCode === null;

      // an honest agent again
      a = startAgent(0);
      const back = await until(
        () => part(w.last(), "a")?.status === "ok" && quota("a") === 40_000,
        10_000,
      );
      // why not, when not: the agent's own last line (a slot whose header was scribbled)
      const backWhy = back
        ? ""
        : ` (the agent said: ${agentLogs.at(-1)?.trim().split("\n").at(-1)?.slice(0, 200)})`;
      const inv = checkAllocations(w.records, { a: 100, b: 100 });
      const exit = await stopWeir(w);
      const restored = [cpuValues(`${P}/a`), cpuValues(`${P}/b`)].every(
        (v) => v.quota === found.quota && v.shares === found.shares,
      );
      // weir removes its slot entries on exit; the directory itself is the test's to remove
      const entriesLeft = existsSync(SLOTS) ? readdirSync(SLOTS).length : 0;
      for (const c of children) if (c.pid && alive(c.pid)) c.kill("SIGTERM");
      // each ends on its own time on a busy machine: wait for all, not a fixed 500 ms
      await until(() => children.every((c) => !c.pid || !alive(c.pid)), 10_000);
      removeCgroups([`${P}/a`, `${P}/b`, P]);
      rmSync(SLOTS, { recursive: true, force: true });
      const nothingLeft =
        !existsSync(path.join(CPU_ROOT, P)) &&
        pidsWithArg(dir).length === 0 &&
        pidsWithArg(SLOTS).length === 0 &&
        entriesLeft === 0;
      const tail = `${w.records.length} cycles, ${inv.violations.length} allocation violations; SIGTERM exit ${exit.code}, found values back: ${restored}; slot entries left after exit: ${entriesLeft}; nothing left: ${nothingLeft}`;
      const tailOk = inv.violations.length === 0 && exit.code === 0 && restored && nothingLeft;
      const resizeRefused = tried.shrink !== "done" && tried.grow !== "done";
      recordRow({
        ...rows.truncated,
        observed: `shrink to 0: ${tried.shrink}, grow: ${tried.grow}; manager alive after: ${managerAlive}; overreaching agent ended by ${over.signal ?? `exit ${over.code}`}, manager alive after: ${managerAliveAfterOverreach}; ${tail}`,
        holds:
          resizeRefused &&
          managerAlive &&
          managerAliveAfterOverreach &&
          over.signal === "SIGBUS" &&
          tailOk,
      });
      recordRow({
        ...rows.scribbled,
        observed: `${tried.scribbled} bytes scribbled; a stale at 100m, its cap still its max (quota 40000 µs): ${aStale}; b ok in all ${during.length} cycles meanwhile: ${bOk}; a restarted honest agent on the scribbled slot accepted, cap back at 40000 µs: ${back}${backWhy}; ${tail}`,
        holds: aStale && bOk && tailOk,
      });
      expect(resizeRefused, JSON.stringify(tried)).toBe(true);
      expect(managerAlive).toBe(true);
      expect(over.signal).toBe("SIGBUS");
      expect(managerAliveAfterOverreach).toBe(true);
      expect(aStale).toBe(true);
      expect(bOk).toBe(true);
      expect(inv.violations).toEqual([]);
      expect(exit.code).toBe(0);
      expect(restored).toBe(true);
      expect(nothingLeft).toBe(true);
    });
  },
);
