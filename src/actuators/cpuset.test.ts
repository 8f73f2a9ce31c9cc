import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "../core/errors.ts";
import { CPUSET_FILE, cpusetDirOf, openCpusetFile } from "./cpuset.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `weirt-${process.pid}-cpuset-`));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let seq = 0;

/** A directory holding cpuset.cpus = `value` (newline-terminated, as the kernel prints it). */
function cpusetDir(value: string): string {
  const dir = path.join(tmp, `g${++seq}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, CPUSET_FILE), `${value}\n`);
  return dir;
}
const read = (dir: string) => fs.readFileSync(path.join(dir, CPUSET_FILE), "latin1");

describe("openCpusetFile", () => {
  it("reads the value found, writes a placement in the kernel's list format, only when it changed", () => {
    const dir = cpusetDir("0-3");
    const c = openCpusetFile("cgroup-v1", "web", dir);
    expect(c.found).toBe("0-3");
    expect(c.file).toBe(path.join(dir, CPUSET_FILE));
    expect(c.place([1])).toEqual({ written: [CPUSET_FILE] });
    expect(read(dir)).toBe("1\n");
    // unchanged: nothing written (the file's mtime stays where the test put it)
    fs.utimesSync(path.join(dir, CPUSET_FILE), 0, 0);
    expect(c.place([1])).toEqual({ written: [] });
    expect(fs.statSync(path.join(dir, CPUSET_FILE)).mtimeMs).toBe(0);
    expect(c.place([0, 1, 3])).toEqual({ written: [CPUSET_FILE] });
    expect(read(dir)).toBe("0-1,3\n");
    expect(c.current()).toBe("0-1,3");
  });

  it("null (not placed) and restore write back the value found at open", () => {
    const dir = cpusetDir("0-1");
    const c = openCpusetFile("cgroup-v1", "web", dir);
    c.place([0]);
    expect(c.place(null)).toEqual({ written: [CPUSET_FILE] });
    expect(read(dir)).toBe("0-1\n");
    c.place([1]);
    expect(c.restore()).toEqual({ written: [CPUSET_FILE] });
    expect(read(dir)).toBe("0-1\n");
    expect(c.restore()).toEqual({ written: [] });
  });

  it("a restart's found value (from the state file) is what null and restore write back", () => {
    // weir placed it on CPU 1, crashed and started again: the file holds "1", found was "0-1"
    const dir = cpusetDir("1");
    const c = openCpusetFile("cgroup-v1", "web", dir, "0-1");
    expect(c.found).toBe("0-1");
    expect(c.current()).toBe("1");
    expect(c.place([1])).toEqual({ written: [] });
    expect(c.restore()).toEqual({ written: [CPUSET_FILE] });
    expect(read(dir)).toBe("0-1\n");
  });

  it("a cgroup without a cpuset: TARGET_NOT_WRITABLE naming the file", () => {
    const dir = path.join(tmp, "none");
    fs.mkdirSync(dir, { recursive: true });
    let err: unknown;
    try {
      openCpusetFile("cgroup-v2", "web", dir);
    } catch (e) {
      err = e;
    }
    expect((err as { code: string }).code).toBe(ErrorCodes.TARGET_NOT_WRITABLE);
    expect((err as Error).message).toContain(path.join(dir, CPUSET_FILE));
    expect((err as Error).message).toContain("does not exist");
  });

  it("a write that fails is reported with the file and value, and tried again next time", () => {
    const dir = cpusetDir("0-1");
    const c = openCpusetFile("cgroup-v1", "web", dir);
    fs.rmSync(dir, { recursive: true });
    const r = c.place([1]);
    expect(r.written).toEqual([]);
    expect(r.error?.code).toBe(ErrorCodes.TARGET_GONE);
    expect(r.error?.message).toContain('"1"');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, CPUSET_FILE), "0-1\n");
    expect(c.place([1]).written).toEqual([CPUSET_FILE]);
  });

  it("after close nothing is written", () => {
    const dir = cpusetDir("0-1");
    const c = openCpusetFile("cgroup-v1", "web", dir);
    c.close();
    expect(c.place([1]).error?.code).toBe(ErrorCodes.DIRECTIVE_INVALID);
    expect(read(dir)).toBe("0-1\n");
  });
});

describe("cpusetDirOf", () => {
  it("v1: the cpuset hierarchy at the partition's path; v2: its own directory", () => {
    const v1 = path.join(import.meta.dirname, "fixtures", "cgroup-v1");
    const v2 = path.join(import.meta.dirname, "fixtures", "cgroup-v2");
    expect(cpusetDirOf(v1, "weir/web")).toBe(path.join(v1, "cpuset", "weir", "web"));
    expect(cpusetDirOf(v2, "weir/web")).toBe(path.join(v2, "weir", "web"));
  });
});
