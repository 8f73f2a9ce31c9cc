import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { agentRunScript, LogTail } from "./guest.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmpFile = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), `weirt-${process.pid}-vm-`));
  dirs.push(d);
  return path.join(d, "serial.log");
};

describe("agentRunScript", () => {
  it("runs the compiled weir agent over ivshmem with /proc/stat CPU and CPU onlining", () => {
    const s = agentRunScript({
      weirEntry: "/work/weir/dist/src/cli/main.js",
      nodeBin: "/usr/bin/node",
      partitionIndex: 2,
      intervalMs: 500,
    });
    expect(s.startsWith("#!/bin/sh\n")).toBe(true);
    expect(s).toContain(
      "exec '/usr/bin/node' '/work/weir/dist/src/cli/main.js' 'agent' '--index' '2' '--key-file' '/tmp/weir/key' '--transport' 'shm' '--ivshmem' '--cgroup' 'none' '--cpu-online' '--interval-ms' '500' '--json' 2>&1",
    );
  });
  it("quotes arguments for sh", () => {
    const s = agentRunScript({
      weirEntry: "/a b/it's.js",
      nodeBin: "/usr/bin/node",
      partitionIndex: 0,
      intervalMs: 100,
    });
    expect(s).toContain(`'/a b/it'\\''s.js'`);
  });
});

describe("LogTail", () => {
  it("waits for a line written after the mark, not one before it", async () => {
    const file = tmpFile();
    writeFileSync(file, "weir-vm: ready 2.19\nsmpboot: Booting Node 0 Processor 1 APIC 0x1\n");
    const tail = new LogTail(file);
    tail.mark();
    expect(await tail.waitFor(/Processor 1 APIC/, 50, { pollMs: 10 })).toBeNull();
    setTimeout(() => appendFileSync(file, "smpboot: CPU 1 is now offline\n"), 30);
    const hit = await tail.waitFor(/CPU 1 is now offline/, 5_000, { pollMs: 10 });
    expect(hit?.line).toBe("smpboot: CPU 1 is now offline");
    expect(tail.seen).toBe("smpboot: CPU 1 is now offline\n");
  });
  it("reads a file that does not exist yet as empty, then what arrives", () => {
    const file = tmpFile();
    const tail = new LogTail(file);
    expect(tail.read()).toBe("");
    writeFileSync(file, "a\n");
    expect(tail.read()).toBe("a\n");
    appendFileSync(file, "b\n");
    expect(tail.read()).toBe("b\n");
  });
  it("fromEnd skips what the file held when it was opened", () => {
    const file = tmpFile();
    writeFileSync(file, "old\n");
    const tail = new LogTail(file, { fromEnd: true });
    appendFileSync(file, "new\n");
    expect(tail.read()).toBe("new\n");
  });
});
