import { fork } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
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
import {
  AgentSlot,
  directiveAreaOffset,
  directiveLockOffset,
  ManagerTable,
  reportAreaOffset,
  reportLockOffset,
  SHM_SLOT_BYTES,
  tableBytes,
  tableLayout,
} from "./shm.ts";

const KEY_HEX = "11".repeat(32);
const KEY = parseKeyHex(KEY_HEX);
let n = 0;
const made: string[] = [];
const tablePath = () => {
  const p = `/dev/shm/weirt-${process.pid}-shm-${n++}`;
  made.push(p);
  return p;
};
afterEach(() => {
  for (const p of made.splice(0)) rmSync(p, { force: true });
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

describe("shared-memory slot table", () => {
  it("creates a file with the documented header and geometry", () => {
    const path = tablePath();
    const t = new ManagerTable({ path, slotCount: 3, now: () => 0x1_0000_0002 });
    const raw = readFileSync(path);
    expect(raw.length).toBe(tableBytes(3));
    // header 64, report locks 64 (3 x 4 padded to 64), directive locks 64, 3 slots of 256
    expect(raw.length).toBe(64 + 64 + 64 + 3 * 256);
    expect(raw.subarray(0, 36).toString("hex")).toBe(
      // "WSHM", version 1, header 64, slot 256, 3 slots, created-at u64,
      // report locks at 64, directive locks at 128, slots at 192
      "5753484d" +
        "0100" +
        "4000" +
        "00010000" +
        "03000000" +
        "02000000" +
        "01000000" +
        "40000000" +
        "80000000" +
        "c0000000",
    );
    expect(tableLayout(10_000)).toEqual({
      slotCount: 10_000,
      reportLocks: 64,
      directiveLocks: 64 + 40_000,
      slots: 64 + 40_000 + 40_000,
      totalBytes: 64 + 40_000 + 40_000 + 10_000 * 256,
    });
    t.close();
  });

  it("passes a report from an agent slot to the manager scan, once per change", () => {
    const path = tablePath();
    const table = new ManagerTable({ path, slotCount: 4 });
    const agent = new AgentSlot({ path, slot: 2 });
    const seen: Array<[number, Buffer]> = [];
    const collect = (slot: number, bytes: Uint8Array) => seen.push([slot, Buffer.from(bytes)]);
    expect(table.scan(collect)).toBe(0);
    const r = report(2, 1);
    agent.writeReport(r);
    expect(table.scan(collect)).toBe(1);
    expect(seen).toEqual([[2, Buffer.from(r)]]);
    expect(table.scan(collect)).toBe(0); // unchanged: not visited again
    agent.writeReport(report(2, 2));
    expect(table.scan(collect)).toBe(1);
    const v = new ReportVerifier({ keys: new KeyRing([{ index: 2, id: "p2", key: KEY }]) });
    expect(seen.map(([, b]) => v.verify(b).ok)).toEqual([true, true]);
    agent.close();
    table.close();
  });

  it("writes the report only into the agent's own slot's report area", () => {
    const path = tablePath();
    const table = new ManagerTable({ path, slotCount: 3 });
    const before = Buffer.from(readFileSync(path));
    const agent = new AgentSlot({ path, slot: 1 });
    agent.writeReport(report(1, 1));
    const after = readFileSync(path);
    const diff: number[] = [];
    for (let i = 0; i < after.length; i++) if (after[i] !== before[i]) diff.push(i);
    const l = tableLayout(3);
    const lock = reportLockOffset(l, 1);
    const area = reportAreaOffset(l, 1);
    expect(diff.length).toBeGreaterThan(0);
    // Only slot 1's report lock word (now 2) and its report area changed.
    expect(
      diff.every((i) => (i >= lock && i < lock + 4) || (i >= area && i < area + REPORT_BYTES)),
    ).toBe(true);
    expect(after.readUInt32LE(lock)).toBe(2);
    expect(() => agent.writeReport(new Uint8Array(REPORT_BYTES + 1))).toThrow(/136 bytes/);
    expect(() => new AgentSlot({ path, slot: 3 })).toThrow(/outside the table/);
    expect(() => new AgentSlot({ path, slot: -1 })).toThrow(/outside the table/);
    agent.close();
    table.close();
  });

  it("carries directives from the manager to the agent's slot only", () => {
    const path = tablePath();
    const table = new ManagerTable({ path, slotCount: 2 });
    const a0 = new AgentSlot({ path, slot: 0 });
    const a1 = new AgentSlot({ path, slot: 1 });
    expect(a1.readDirective()).toBeNull();
    const now = Date.now();
    const d = encodeDirective(
      {
        partitionIndex: 1,
        sequence: 5,
        timestampMs: now,
        cpuMillis: 750,
        weight: 300,
        cpuCount: 1,
      },
      KEY,
    );
    table.writeDirective(1, d);
    expect(a0.readDirective()).toBeNull();
    const got = a1.readDirective();
    expect(got && Buffer.from(got).equals(Buffer.from(d))).toBe(true);
    expect(a1.readDirective()).toBeNull(); // unchanged
    const v = new DirectiveVerifier({ keys: new KeyRing([{ index: 1, id: "p1", key: KEY }]) });
    expect(v.verify(got!).ok).toBe(true);
    const raw = readFileSync(path);
    const l = tableLayout(2);
    const at = directiveAreaOffset(l, 1);
    expect(raw.subarray(at, at + 80).equals(Buffer.from(d))).toBe(true);
    expect(raw.readUInt32LE(directiveLockOffset(l, 1))).toBe(2);
    expect(raw.readUInt32LE(directiveLockOffset(l, 0))).toBe(0);
    expect(() => table.writeDirective(2, d)).toThrow(/outside the table/);
    expect(() => table.writeDirective(0, new Uint8Array(DIRECTIVE_BYTES - 1))).toThrow(/80 bytes/);
    for (const h of [a0, a1, table]) h.close();
  });

  it("reports a slot whose lock stays odd as torn, and reads it once the writer finishes", () => {
    const path = tablePath();
    const table = new ManagerTable({ path, slotCount: 2, readRetries: 4 });
    const agent = new AgentSlot({ path, slot: 0 });
    agent.writeReport(report(0, 1));
    // A writer that died mid-write: lock word odd.
    const fd = openSync(path, "r+");
    const odd = Buffer.alloc(4);
    odd.writeUInt32LE(3);
    writeSync(fd, odd, 0, 4, reportLockOffset(tableLayout(2), 0));
    const torn: number[] = [];
    expect(
      table.scan(
        () => expect.unreachable(),
        (s) => torn.push(s),
      ),
    ).toBe(0);
    expect(
      table.scan(
        () => expect.unreachable(),
        (s) => torn.push(s),
      ),
    ).toBe(0);
    expect(torn).toEqual([0, 0]);
    // The agent restarts and writes again: the writer turns an odd lock into odd+2 -> even.
    agent.writeReport(report(0, 2));
    const seen: number[] = [];
    expect(table.scan((s) => seen.push(s))).toBe(1);
    expect(seen).toEqual([0]);
    closeSync(fd);
    agent.close();
    table.close();
  });

  it("reopens an existing table with the same geometry and refuses a different one", () => {
    const path = tablePath();
    const t1 = new ManagerTable({ path, slotCount: 5 });
    const agent = new AgentSlot({ path, slot: 4 });
    agent.writeReport(report(4, 1));
    t1.close();
    const t2 = new ManagerTable({ path, slotCount: 5 });
    const seen: number[] = [];
    t2.scan((s) => seen.push(s));
    expect(seen).toEqual([4]); // a restarted manager sees what agents wrote before
    t2.close();
    expect(() => new ManagerTable({ path, slotCount: 6 })).toThrow(/has 5 slots/);
    agent.close();
  });

  it("refuses files that are not slot tables and handles that are closed", () => {
    const path = tablePath();
    const fd = openSync(path, "w");
    writeSync(fd, Buffer.alloc(SHM_SLOT_BYTES * 2, 0x41));
    closeSync(fd);
    expect(() => new AgentSlot({ path, slot: 0 })).toThrow(/bad magic/);
    expect(() => new ManagerTable({ path, slotCount: 1 })).toThrow(/bad magic/);
    expect(() => new AgentSlot({ path: "/dev/shm/weirt-does-not-exist", slot: 0 })).toThrow(
      /cannot open/,
    );
    const p2 = tablePath();
    const t = new ManagerTable({ path: p2, slotCount: 1 });
    t.close();
    expect(() => t.scan(() => {})).toThrow(/closed/);
    t.close(); // idempotent
  });

  it("never hands out a torn copy while another process rewrites the slot flat out", async () => {
    const path = tablePath();
    const table = new ManagerTable({ path, slotCount: 1, readRetries: 64 });
    const child = fork(
      fileURLToPath(new URL("./shm-stress-writer.ts", import.meta.url)),
      [path, "0", KEY_HEX, "1500"],
      { execArgv: ["--import", "tsx"], stdio: ["ignore", "pipe", "inherit", "ipc"] },
    );
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
      // A fresh verifier each time: the writer cycles sequences, we test integrity, not order.
      table.scan(
        (_s, bytes) => {
          const r = new ReportVerifier({ keys, maxAgeMs: 60_000 }).verify(bytes);
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
    table.close();
    expect(existsSync(path)).toBe(true);
  }, 30_000);
});
