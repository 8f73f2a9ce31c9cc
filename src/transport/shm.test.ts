import { type ChildProcess, execFileSync, fork } from "node:child_process";
import {
  chownSync,
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import {
  DIRECTIVE_BYTES,
  DirectiveVerifier,
  encodeDirective,
  encodeReport,
  KeyRing,
  parseKeyHex,
  REPORT_BYTES,
  ReportVerifier,
} from "./codec.ts";
import { F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, fileSeals } from "./mmap.ts";
import {
  AgentSlot,
  ManagerSlots,
  SLOT_BYTES,
  SLOT_DIRECTIVE_AREA,
  SLOT_DIRECTIVE_LOCK,
  SLOT_REPORT_AREA,
  SLOT_REPORT_LOCK,
  slotPath,
} from "./shm.ts";
import { ShmAgentChannel, ShmReportSource } from "./shm-source.ts";

const KEY_HEX = "11".repeat(32);
const KEY = parseKeyHex(KEY_HEX);
let n = 0;
const made: string[] = [];
const children: ChildProcess[] = [];
const slotDir = () => {
  const p = `/dev/shm/weirt-${process.pid}-shm-${n++}`;
  made.push(p);
  return p;
};
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill();
  for (const p of made.splice(0)) rmSync(p, { force: true, recursive: true });
});

const report = (slot: number, sequence: number, now = Date.now()) =>
  encodeReport(
    {
      partitionIndex: slot,
      sequence,
      timestampMs: now,
      rxPackets: 10 * sequence,
      txPackets: 9 * sequence,
      droppedPackets: 0,
      cpuUsageNs: 1_000_000 * sequence,
      nrPeriods: 0,
      nrThrottled: 0,
      throttledNs: 0,
      velocityPacketsPerCpuSec: 9000,
      velocityWindowMs: 100,
    },
    KEY,
  );

/** A scan that copies each consistent report (read) and collects the copies (commit). */
const collect = (slots: ManagerSlots, seen: Array<[number, Buffer]>, torn: number[] = []) =>
  slots.scan(
    (_i, bytes, at) => Buffer.from(bytes.subarray(at, at + REPORT_BYTES)),
    (i, copy) => seen.push([i, copy]),
    (i) => torn.push(i),
  );

const HOSTILE = fileURLToPath(new URL("./shm-hostile-agent.ts", import.meta.url));
function hostile(dir: string, slot: number, mode: "scribble" | "overreach") {
  const child = fork(HOSTILE, [dir, String(slot), mode], {
    execArgv: ["--import", "tsx"],
    stdio: ["pipe", "pipe", "pipe", "ipc"],
  });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d) => {
    out += String(d);
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((res) =>
    child.on("exit", (code, signal) => res({ code, signal })),
  );
  const line = async (): Promise<Record<string, unknown>> => {
    while (!out.includes("\n")) {
      if (child.exitCode !== null || child.signalCode !== null) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const first = out.split("\n")[0]!;
    return first === "" ? {} : JSON.parse(first);
  };
  return { child, exited, line, output: () => out };
}

describe("shared-memory slots", () => {
  it("makes one sealed page per partition and publishes it in a 0700 directory", () => {
    const dir = slotDir();
    const slots = new ManagerSlots({ dir, indexes: [0, 5], now: () => 0x1_0000_0002 });
    const st = lstatSync(dir);
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o777).toBe(0o700);
    expect(readdirSync(dir).sort()).toEqual(["0", "5"]);
    expect(readlinkSync(slotPath(dir, 5))).toMatch(new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
    const raw = readFileSync(slotPath(dir, 5));
    expect(raw.length).toBe(SLOT_BYTES);
    expect(raw.subarray(0, 24).toString("hex")).toBe(
      // "WSLT", version 2, header 64, partition 5, slot 4096 bytes, created-at u64
      "57534c54" + "0200" + "4000" + "05000000" + "00100000" + "02000000" + "01000000",
    );
    const fd = openSync(slotPath(dir, 5), "r+");
    const seals = fileSeals(fd);
    closeSync(fd);
    expect(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)).toBe(
      F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL,
    );
    slots.close();
    expect(readdirSync(dir)).toEqual([]); // close removes the entries it published
  });

  it("passes a report from an agent slot to the manager scan, once per change", () => {
    const dir = slotDir();
    const slots = new ManagerSlots({ dir, indexes: [0, 2, 3] });
    const agent = new AgentSlot({ path: dir, slot: 2 });
    const seen: Array<[number, Buffer]> = [];
    expect(collect(slots, seen)).toBe(0);
    const r = report(2, 1);
    agent.writeReport(r);
    expect(collect(slots, seen)).toBe(1);
    expect(seen).toEqual([[2, Buffer.from(r)]]);
    expect(collect(slots, seen)).toBe(0); // unchanged: not visited again
    const r2 = report(2, 2);
    agent.writeReport(r2);
    expect(collect(slots, seen)).toBe(1);
    const v = new ReportVerifier({ keys: new KeyRing([{ index: 2, id: "p2", key: KEY }]) });
    expect(seen.map(([, b]) => v.verify(b).ok)).toEqual([true, true]);
    // what the agent wrote sits where the layout says, under a lock now at 4 (two writes)
    const raw = readFileSync(slotPath(dir, 2));
    expect(raw.readUInt32LE(SLOT_REPORT_LOCK)).toBe(4);
    expect(raw.subarray(SLOT_REPORT_AREA, SLOT_REPORT_AREA + REPORT_BYTES)).toEqual(
      Buffer.from(r2),
    );
    expect(() => agent.writeReport(new Uint8Array(REPORT_BYTES + 1))).toThrow(/136 bytes/);
    agent.close();
    slots.close();
  });

  it("carries directives from the manager to that partition's slot only", () => {
    const dir = slotDir();
    const slots = new ManagerSlots({ dir, indexes: [0, 1] });
    const a0 = new AgentSlot({ path: dir, slot: 0 });
    const a1 = new AgentSlot({ path: slotPath(dir, 1), slot: 1 }); // the slot itself also works
    expect(a1.readDirective()).toBeNull();
    const d = encodeDirective(
      {
        partitionIndex: 1,
        sequence: 5,
        timestampMs: Date.now(),
        cpuMillis: 750,
        weight: 300,
        cpuCount: 1,
      },
      KEY,
    );
    slots.writeDirective(1, d);
    expect(a0.readDirective()).toBeNull();
    const got = a1.readDirective();
    expect(got && Buffer.from(got).equals(Buffer.from(d))).toBe(true);
    expect(a1.readDirective()).toBeNull(); // unchanged
    const v = new DirectiveVerifier({ keys: new KeyRing([{ index: 1, id: "p1", key: KEY }]) });
    expect(v.verify(got!).ok).toBe(true);
    const raw = readFileSync(slotPath(dir, 1));
    expect(raw.subarray(SLOT_DIRECTIVE_AREA, SLOT_DIRECTIVE_AREA + 80).equals(Buffer.from(d))).toBe(
      true,
    );
    expect(raw.readUInt32LE(SLOT_DIRECTIVE_LOCK)).toBe(2);
    expect(readFileSync(slotPath(dir, 0)).readUInt32LE(SLOT_DIRECTIVE_LOCK)).toBe(0);
    expect(() => slots.writeDirective(2, d)).toThrow(/no shared-memory slot for partition 2/);
    expect(() => slots.writeDirective(0, new Uint8Array(DIRECTIVE_BYTES - 1))).toThrow(/80 bytes/);
    expect(() => new AgentSlot({ path: dir, slot: 2 })).toThrow(/cannot open/);
    expect(() => new AgentSlot({ path: dir, slot: 0.5 })).toThrow(/not a partition index/);
    for (const h of [a0, a1, slots]) h.close();
  });

  it("refuses a slot directory that is a symlink, not its own, or open to others", () => {
    const base = slotDir();
    mkdirSync(base, { mode: 0o700 });
    const open = `${base}/open`;
    mkdirSync(open, { mode: 0o755 });
    expect(() => new ManagerSlots({ dir: open, indexes: [0] })).toThrow(
      /must not be open to group or others \(mode 0700\) \(rule: slot-directory\): got mode 0755/,
    );
    const foreign = `${base}/foreign`;
    mkdirSync(foreign, { mode: 0o700 });
    chownSync(foreign, 4242, 4242);
    expect(() => new ManagerSlots({ dir: foreign, indexes: [0] })).toThrow(
      /must be owned by uid \d+ .*: got uid 4242/,
    );
    const link = `${base}/link`;
    mkdirSync(`${base}/real`, { mode: 0o700 });
    symlinkSync(`${base}/real`, link);
    expect(() => new ManagerSlots({ dir: link, indexes: [0] })).toThrow(/got a symlink/);
    expect(() => new ManagerSlots({ dir: `${base}/x`, indexes: [1, 1] })).toThrow(/used twice/);
  });

  it("refuses a slot that is not a weir slot, or another partition's", () => {
    const dir = slotDir();
    const slots = new ManagerSlots({ dir, indexes: [3] });
    expect(() => new AgentSlot({ path: slotPath(dir, 3), slot: 4 })).toThrow(
      /belongs to partition 3, not 4/,
    );
    const junk = `${dir}-junk`;
    made.push(junk);
    execFileSync("truncate", ["-s", String(SLOT_BYTES), junk]);
    expect(() => new AgentSlot({ path: junk, slot: 0 })).toThrow(/bad magic/);
    execFileSync("truncate", ["-s", "100", junk]);
    expect(() => new AgentSlot({ path: junk, slot: 0 })).toThrow(/holds 100 bytes, expected 4096/);
    slots.close();
    expect(() =>
      slots.scan(
        () => 0,
        () => {},
      ),
    ).toThrow(/closed/);
    slots.close(); // idempotent
  });

  it("confines a hostile agent process to its own page: scribbles, truncation and reads beyond it", async () => {
    const dir = slotDir();
    const slots = new ManagerSlots({ dir, indexes: [0, 1, 2], readRetries: 4 });
    const a0 = new AgentSlot({ path: dir, slot: 0 });
    const a2 = new AgentSlot({ path: dir, slot: 2 });
    const before = [0, 2].map((i) => Buffer.from(readFileSync(slotPath(dir, i))));
    // A real second process, agent of partition 1, overwrites all it can address.
    const h = hostile(dir, 1, "scribble");
    expect(await h.line()).toEqual({ scribbled: SLOT_BYTES, shrink: "EPERM", grow: "EPERM" });
    // …and the same from outside, as a shell would: the seals refuse it.
    expect(() =>
      execFileSync("truncate", ["-s", "0", slotPath(dir, 1)], { stdio: "pipe" }),
    ).toThrow(/Operation not permitted/);
    expect(readFileSync(slotPath(dir, 1)).length).toBe(SLOT_BYTES);
    // The other partitions' slots did not change by a byte.
    expect([0, 2].map((i) => readFileSync(slotPath(dir, i)))).toEqual(before);
    // The manager keeps reading them while partition 1's lock is held odd (0xFFFFFFFF).
    a0.writeReport(report(0, 1));
    a2.writeReport(report(2, 1));
    const seen: Array<[number, Buffer]> = [];
    const torn: number[] = [];
    expect(collect(slots, seen, torn)).toBe(2);
    expect(seen.map(([i]) => i)).toEqual([0, 2]);
    expect(torn).toEqual([1]); // bounded: 4 tries, then counted and skipped until next scan
    expect(collect(slots, seen, torn)).toBe(0);
    expect(torn).toEqual([1, 1]);
    h.child.stdin!.end();
    expect(await h.exited).toEqual({ code: 0, signal: null });
    // Its mapping holds its page and nothing behind it: touching the next page kills it.
    const o = hostile(dir, 1, "overreach");
    expect(await o.exited).toEqual({ code: null, signal: "SIGBUS" });
    expect(o.output()).toContain("firstPage");
    expect(o.output()).not.toContain("secondPage");
    for (const x of [a0, a2, slots]) x.close();
  }, 30_000);

  it("a live source survives truncation and a punched hole: that partition is dropped, then stale", () => {
    const dir = slotDir();
    const keys = new KeyRing([
      { index: 0, id: "p0", key: KEY },
      { index: 1, id: "p1", key: KEY },
    ]);
    let clock = Date.now();
    const now = () => clock;
    const source = new ShmReportSource({ path: dir, keys, now, staleAfterMs: 1000 });
    const a0 = new ShmAgentChannel({ path: dir, partitionIndex: 0, key: KEY, now });
    const a1 = new ShmAgentChannel({ path: dir, partitionIndex: 1, key: KEY, now });
    let seq = 1;
    a0.publish(report(0, seq++, clock));
    a1.publish(report(1, seq++, clock));
    expect([...source.latest().keys()].sort()).toEqual(["p0", "p1"]);
    // Real processes go at partition 1's slot: truncation is refused by the seals…
    expect(() =>
      execFileSync("truncate", ["-s", "0", slotPath(dir, 1)], { stdio: "pipe" }),
    ).toThrow(/Operation not permitted/);
    // …and freeing its page (allowed) leaves a zero page under the manager's mapping.
    execFileSync("fallocate", [
      "--punch-hole",
      "--offset",
      "0",
      "--length",
      "4096",
      slotPath(dir, 1),
    ]);
    const rejectedBefore = source.rejected().forged;
    for (let t = 0; t < 12; t++) {
      clock += 100;
      a0.publish(report(0, seq++, clock));
      source.latest(); // scans both slots every cycle, no crash
    }
    // The zero page was read once (its lock moved from 2 to 0) and dropped: its index field
    // (0) is not its slot (1).
    expect(source.rejected().forged).toBe(rejectedBefore + 1);
    expect(source.latest().get("p0")?.receivedAtMs).toBe(clock);
    expect(source.isStale("p0", clock)).toBe(false);
    expect(source.isStale("p1", clock)).toBe(true); // silent for 1,200 ms > 1,000
    // The partition's agent writes again into the same (sealed, still mapped) page: back.
    a1.publish(report(1, seq++, clock));
    expect(source.latest().get("p1")?.receivedAtMs).toBe(clock);
    for (const x of [a0, a1, source]) x.close();
  });

  it("never hands out a torn copy while another process rewrites the slot flat out", async () => {
    const dir = slotDir();
    const slots = new ManagerSlots({ dir, indexes: [0], readRetries: 64 });
    const child = fork(
      fileURLToPath(new URL("./shm-stress-writer.ts", import.meta.url)),
      [dir, "0", KEY_HEX, "1500"],
      { execArgv: ["--import", "tsx"], stdio: ["ignore", "pipe", "inherit", "ipc"] },
    );
    children.push(child);
    let out = "";
    child.stdout!.on("data", (d) => {
      out += String(d);
    });
    const exited = new Promise<number>((res) => child.on("exit", (code) => res(code ?? -1)));
    while (!out.includes("ready")) await new Promise((r) => setTimeout(r, 10));
    const keys = new KeyRing([{ index: 0, id: "p0", key: KEY }]);
    let verified = 0;
    let forged = 0;
    let torn = 0;
    const deadline = Date.now() + 1000;
    while (Date.now() < deadline) {
      // Verified in place, as the manager does; a fresh verifier each time: the writer cycles
      // sequences, we test integrity, not order.
      slots.scan(
        (_i, bytes, at) =>
          new ReportVerifier({ keys, maxAgeMs: 60_000 }).verify(
            bytes.subarray(at, at + REPORT_BYTES),
          ),
        (_i, r) => {
          if (r.ok) verified++;
          else if (r.reason === "forged") forged++;
        },
        () => torn++,
      );
      await new Promise((r) => setImmediate(r));
    }
    expect(await exited).toBe(0);
    const writes = Number(out.trim().split("\n").pop());
    expect(writes).toBeGreaterThan(1000);
    expect(forged).toBe(0);
    expect(verified).toBeGreaterThan(0); // a flat-out writer starves readers often (torn), never fools them
    slots.close();
  }, 30_000);

  it("an agent's channel follows a restarted manager to its new slot", () => {
    const dir = slotDir();
    const keys = new KeyRing([{ index: 0, id: "p0", key: KEY }]);
    const clock = Date.now();
    const now = () => clock;
    const s1 = new ShmReportSource({ path: dir, keys, now });
    const ch = new ShmAgentChannel({ path: dir, partitionIndex: 0, key: KEY, now });
    ch.publish(report(0, 1, clock));
    expect(s1.latest().get("p0")?.sequence).toBe(1);
    s1.close();
    // No manager: nothing to open (the agent reports the error and tries again next time).
    expect(() => ch.publish(report(0, 2, clock))).toThrow(/cannot open shared-memory slot/);
    const s2 = new ShmReportSource({ path: dir, keys, now });
    ch.publish(report(0, 3, clock));
    expect(s2.latest().get("p0")?.sequence).toBe(3);
    ch.close();
    s2.close();
  });
});
