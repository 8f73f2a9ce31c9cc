// The QEMU backend's own behaviour beyond the contract suite: QMP errors reported once and
// retried, QEMU gone (its QMP closed) as TARGET_GONE for that partition only, a dry run that
// never touches QMP. On a v1 fixture cgroup tree and FakeQemu (src/vm/fake-qemu.ts).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cappedDirective } from "../core/directive.ts";
import { ErrorCodes } from "../core/errors.ts";
import { FakeQemu } from "../vm/fake-qemu.ts";
import { QemuBackend, type QemuTarget, vcpusFor } from "./qemu.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `weirt-${process.pid}-qemu-`));
fs.cpSync(path.join(import.meta.dirname, "fixtures"), tmp, { recursive: true });
const cgroupfs = path.join(tmp, "cgroup-v1");
const fakes: FakeQemu[] = [];
afterAll(async () => {
  for (const f of fakes) await f.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
});

let seq = 0;
async function guest(maxCpus = 3): Promise<{ fake: FakeQemu; target: QemuTarget }> {
  const label = `g${++seq}`;
  fs.cpSync(path.join(cgroupfs, "cpu", "weir", "web"), path.join(cgroupfs, "cpu", "weir", label), {
    recursive: true,
  });
  const base = path.join(tmp, label);
  const fake = await FakeQemu.start({
    qmpSocket: `${base}.qmp`,
    consoleLog: `${base}.log`,
    maxCpus,
  });
  fakes.push(fake);
  return {
    fake,
    target: {
      partition: label,
      qemu: { cgroup: `weir/${label}`, qmpSocket: `${base}.qmp`, consoleLog: `${base}.log` },
    },
  };
}

const withCpus = (partition: string, n: number) => ({
  ...cappedDirective(partition, Number.POSITIVE_INFINITY, 100),
  cpuCount: n,
});

async function until(fn: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("qemu backend", () => {
  it("clamps a CPU count into [min, max], at least 1", () => {
    expect(vcpusFor(0, 1, 3)).toBe(1);
    expect(vcpusFor(2, 1, 3)).toBe(2);
    expect(vcpusFor(8, 1, 3)).toBe(3);
    expect(vcpusFor(1, 2, 3)).toBe(2);
    expect(vcpusFor(Number.NaN, 2, 3)).toBe(2);
  });

  it("grows and shrinks the guest one vCPU at a time; applied follows the guest kernel's console", async () => {
    const { fake, target } = await guest();
    const a = new QemuBackend({ cgroupfs }).open({
      ...target,
      qemu: { ...target.qemu, shrinkAfterMs: 0, unplug: true },
    });
    expect(a.apply(withCpus(target.partition, 3)).written).toEqual(["vcpus"]);
    await until(() => a.applied().cpuCount === 3, "3 vCPUs online");
    expect(fake.plugged()).toBe(3);
    expect(a.vcpus()).toMatchObject({ desired: 3, applied: 3, lastError: null, gone: false });
    expect(a.apply(withCpus(target.partition, 3)).written).toEqual([]);
    a.apply(withCpus(target.partition, 1));
    await until(() => a.applied().cpuCount === 1, "back to 1 vCPU");
    await a.settled();
    expect(fake.plugged()).toBe(1);
    expect(fake.commands.filter((c) => c === "device_add")).toHaveLength(2);
    expect(fake.commands.filter((c) => c === "device_del")).toHaveLength(2);
    a.close();
  });

  it("by default never unplugs: the guest's agent offlines, the vCPU stays plugged and is onlined again", async () => {
    const { fake, target } = await guest();
    const a = new QemuBackend({ cgroupfs }).open({
      ...target,
      qemu: { ...target.qemu, shrinkAfterMs: 0 },
    });
    a.apply(withCpus(target.partition, 2));
    await until(() => a.applied().cpuCount === 2, "2 vCPUs online");
    expect(a.apply(withCpus(target.partition, 1)).written).toEqual(["vcpus"]);
    await a.settled();
    expect(fake.plugged()).toBe(2);
    expect(fake.commands).not.toContain("device_del");
    expect(a.vcpus()).toMatchObject({ desired: 1, plugged: 2 });
    // the guest's agent offlines CPU 1 on the directive: its kernel's line on the console
    fs.appendFileSync(target.qemu.consoleLog, "[   41.104221] smpboot: CPU 1 is now offline\n");
    await until(() => a.applied().cpuCount === 1, "the guest at 1 CPU");
    // more again: nothing to plug, the agent onlines the plugged vCPU
    expect(a.apply(withCpus(target.partition, 2)).written).toEqual(["vcpus"]);
    await a.settled();
    expect(fake.commands.filter((c) => c === "device_add")).toHaveLength(1);
    a.close();
  });

  it("unplugs only after directives asked for fewer vCPUs for shrinkAfterMs, then the most of them", async () => {
    const { fake, target } = await guest();
    let t = 0;
    const a = new QemuBackend({ cgroupfs, now: () => t }).open({
      ...target,
      qemu: { ...target.qemu, shrinkAfterMs: 5000, unplug: true },
    });
    a.apply(withCpus(target.partition, 3));
    await until(() => a.applied().cpuCount === 3, "3 vCPUs online");
    expect(a.apply(withCpus(target.partition, 1)).written).toEqual([]); // t = 0: held
    t = 3000;
    expect(a.apply(withCpus(target.partition, 2)).written).toEqual([]);
    t = 4000;
    expect(a.apply(withCpus(target.partition, 3)).written).toEqual([]); // back up: the wait restarts
    t = 5000;
    expect(a.apply(withCpus(target.partition, 1)).written).toEqual([]);
    t = 9000;
    expect(a.apply(withCpus(target.partition, 2)).written).toEqual([]);
    t = 10_000;
    expect(a.apply(withCpus(target.partition, 1)).written).toEqual(["vcpus"]);
    expect(a.vcpus().desired).toBe(2); // the most asked for over the 5 s
    await until(() => a.applied().cpuCount === 2, "down to 2 vCPUs");
    await a.settled();
    expect(fake.plugged()).toBe(2);
    // a restore shrinks at once
    expect(a.restore(a.snapshot()).written).toEqual(["vcpus"]);
    await until(() => a.applied().cpuCount === 1, "restored to 1 vCPU");
    a.close();
  });

  it("a QMP error comes back once as a retryable APPLY_FAILED and is retried", async () => {
    const { fake, target } = await guest();
    let t = 0;
    const a = new QemuBackend({ cgroupfs, now: () => t }).open(target);
    await until(() => a.vcpus().connected, "QMP connected");
    fake.failNext = { command: "device_add", cls: "GenericError", desc: "no free slot (injected)" };
    expect(a.apply(withCpus(target.partition, 2)).error).toBeUndefined();
    await a.settled();
    const r = a.apply(withCpus(target.partition, 2));
    expect(r.error).toMatchObject({ code: ErrorCodes.APPLY_FAILED, retryable: true });
    expect(r.error?.message).toContain("no free slot (injected)");
    expect(r.error?.message).toContain(target.qemu.qmpSocket);
    t += 1000; // the retry interval passes: the next apply retries, and it succeeds
    expect(a.apply(withCpus(target.partition, 2)).error).toBeUndefined();
    await until(() => a.applied().cpuCount === 2, "2 vCPUs after the retry");
    expect(a.apply(withCpus(target.partition, 2)).error).toBeUndefined();
    a.close();
  });

  it("QEMU gone: TARGET_GONE, terminal and sticky, for that partition only", async () => {
    const one = await guest();
    const two = await guest();
    const backend = new QemuBackend({ cgroupfs });
    const a = backend.open(one.target);
    const b = backend.open(two.target);
    await until(() => a.vcpus().connected && b.vcpus().connected, "QMP connected");
    await one.fake.kill();
    await until(() => a.apply(withCpus(one.target.partition, 1)).error !== undefined, "gone seen");
    const r = a.apply(withCpus(one.target.partition, 2));
    expect(r.error).toMatchObject({ code: ErrorCodes.TARGET_GONE, retryable: false });
    expect(r.error?.message).toContain("closed (QEMU exited)");
    expect(a.restore(a.snapshot()).error?.code).toBe(ErrorCodes.TARGET_GONE);
    // the other guest is still managed
    expect(b.apply(withCpus(two.target.partition, 2))).toEqual({
      partition: two.target.partition,
      written: ["vcpus"],
    });
    await until(() => b.applied().cpuCount === 2, "the other guest grows");
    a.close();
    b.close();
  });

  it("a socket nobody answers on is QEMU gone once the connect times out", async () => {
    const { target } = await guest();
    const dead = path.join(tmp, "silent.qmp");
    const server = (await import("node:net")).createServer(() => {}); // accepts, never greets
    await new Promise<void>((r) => server.listen(dead, () => r()));
    const a = new QemuBackend({ cgroupfs, connectTimeoutMs: 200 }).open({
      ...target,
      qemu: { ...target.qemu, qmpSocket: dead },
    });
    await until(() => a.vcpus().gone, "gone after the connect timeout");
    expect(a.apply(withCpus(target.partition, 2)).error?.code).toBe(ErrorCodes.TARGET_GONE);
    a.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it("a dry run decides the vCPU count and never speaks QMP", async () => {
    const { fake, target } = await guest();
    const dry = new QemuBackend({ cgroupfs }).openDryRun(target);
    expect(dry.apply(withCpus(target.partition, 2)).written).toEqual(["vcpus"]);
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.commands).toEqual([]);
    expect(dry.applied().cpuCount).toBe(1);
    dry.close();
  });
});
