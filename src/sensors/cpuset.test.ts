import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  CPUSET_FILE_RECHECK_MS,
  cpusAllowedOf,
  ONLINE_CPUS_REUSE_MS,
  ReachableCpusReader,
  readPartitionCpus,
  readReachableCpus,
  readThreadIds,
  readThreadsCpus,
} from "./cpuset.ts";

const tmpDirs: string[] = [];
afterEach(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A root with the given files (relative path → content, in the kernel's format: list + "\n"). */
function tree(files: Record<string, string>): { cgroupfs: string; sysfs: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "weir-cpuset-"));
  tmpDirs.push(root);
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
  return { cgroupfs: path.join(root, "cgroup"), sysfs: path.join(root, "sys") };
}

const ONLINE = "sys/devices/system/cpu/online";

describe("readPartitionCpus", () => {
  it("v1: the partition's cpuset.effective_cpus, intersected with the online CPUs", () => {
    const roots = tree({
      [ONLINE]: "0-3\n",
      "cgroup/cpuset/cpuset.effective_cpus": "0-3\n",
      "cgroup/cpuset/weir/web/cpuset.effective_cpus": "1,3-5\n",
      "cgroup/cpuset/weir/web/cpuset.cpus": "1,3-5\n",
    });
    const file = path.join(roots.cgroupfs, "cpuset/weir/web/cpuset.effective_cpus");
    expect(readPartitionCpus(roots, "weir/web")).toEqual({
      cpus: [1, 3],
      source: `${file} ∩ ${path.join(roots.sysfs, "devices/system/cpu/online")}`,
    });
  });

  it("v1 without effective_cpus reads cpuset.cpus; an empty (unconfigured) cpuset is skipped", () => {
    const withCpus = tree({
      [ONLINE]: "0-1\n",
      "cgroup/cpuset/weir/web/cpuset.cpus": "1\n",
    });
    expect(readPartitionCpus(withCpus, "/weir/web/")?.cpus).toEqual([1]);
    const empty = tree({
      [ONLINE]: "0-1\n",
      "cgroup/cpuset/weir/web/cpuset.effective_cpus": "\n",
      "cgroup/cpuset/weir/web/cpuset.cpus": "\n",
    });
    expect(readPartitionCpus(empty, "weir/web")).toEqual({
      cpus: [0, 1],
      source: path.join(empty.sysfs, "devices/system/cpu/online"),
    });
  });

  it("v2: the partition's cpuset.cpus.effective, else its nearest ancestor's", () => {
    const own = tree({
      [ONLINE]: "0-7\n",
      "cgroup/cgroup.controllers": "cpuset cpu io memory pids\n",
      "cgroup/cpuset.cpus.effective": "0-7\n",
      "cgroup/weir/cpuset.cpus.effective": "2-5\n",
      "cgroup/weir/web/cpuset.cpus.effective": "4-5\n",
    });
    expect(readPartitionCpus(own, "weir/web")?.cpus).toEqual([4, 5]);
    const inherited = tree({
      [ONLINE]: "0-7\n",
      "cgroup/cgroup.controllers": "cpuset cpu io memory pids\n",
      "cgroup/cpuset.cpus.effective": "0-7\n",
      "cgroup/weir/cpuset.cpus.effective": "2-5\n",
      "cgroup/weir/web/cgroup.controllers": "cpu\n",
    });
    expect(readPartitionCpus(inherited, "weir/web")?.source).toBe(
      `${path.join(inherited.cgroupfs, "weir/cpuset.cpus.effective")} ∩ ${path.join(inherited.sysfs, "devices/system/cpu/online")}`,
    );
    expect(readPartitionCpus(inherited, "weir/web")?.cpus).toEqual([2, 3, 4, 5]);
  });

  it("a hybrid host whose cgroup2 has no cpuset (this host) falls back to the online CPUs", () => {
    const roots = tree({
      [ONLINE]: "0-1\n",
      "cgroup/unified/cgroup.controllers": "hugetlb\n",
      "cgroup/unified/weir/web/cgroup.controllers": "\n",
      "cgroup/cpu/weir/web/cpu.shares": "1024\n",
    });
    expect(readPartitionCpus(roots, "weir/web")).toEqual({
      cpus: [0, 1],
      source: path.join(roots.sysfs, "devices/system/cpu/online"),
    });
  });

  it("a malformed cpuset file is skipped; nothing readable at all gives null, never a throw", () => {
    const bad = tree({
      [ONLINE]: "0-1\n",
      "cgroup/cpuset/weir/web/cpuset.effective_cpus": "garbage\n",
      "cgroup/cpuset/weir/web/cpuset.cpus": "0\n",
    });
    expect(readPartitionCpus(bad, "weir/web")?.cpus).toEqual([0]);
    expect(readPartitionCpus(tree({}), "weir/web")).toBeNull();
    expect(readPartitionCpus(tree({ [ONLINE]: "0\n" }), "../escape")?.cpus).toEqual([0]);
  });
});

describe("reachable CPUs (cpuset ∩ the threads' affinity)", () => {
  it("reads Cpus_allowed_list from a status text", () => {
    expect(
      cpusAllowedOf("Name:\tnode\nCpus_allowed:\t2\nCpus_allowed_list:\t1\nMems_allowed:\t1\n"),
    ).toEqual([1]);
    expect(cpusAllowedOf("Cpus_allowed_list:\t0-2,5\n")).toEqual([0, 1, 2, 5]);
    expect(cpusAllowedOf("Name:\tx\n")).toBeNull();
    expect(cpusAllowedOf("Cpus_allowed_list:\tgarbage\n")).toBeNull();
  });

  it("this process pinned by sched affinity: its threads reach only that CPU, the partition the cpuset ∩ it", () => {
    // Real affinity: a child pinned with taskset to the first online CPU (root or not).
    const online = readThreadsCpus("/proc", [process.pid]);
    expect(online).not.toBeNull();
    const first = online![0]!;
    const child = spawnSync("taskset", ["-c", String(first), "cat", "/proc/self/status"], {
      encoding: "latin1",
    });
    if (child.status !== 0) throw new Error(`taskset failed: ${child.stderr}`);
    expect(cpusAllowedOf(child.stdout)).toEqual([first]);

    const roots = tree({ [ONLINE]: "0-1\n" });
    const procfs = path.join(path.dirname(roots.sysfs), "proc");
    fs.mkdirSync(path.join(procfs, "41"), { recursive: true });
    fs.mkdirSync(path.join(procfs, "42"), { recursive: true });
    fs.writeFileSync(path.join(procfs, "41", "status"), "Cpus_allowed_list:\t1\n");
    fs.writeFileSync(path.join(procfs, "42", "status"), "Cpus_allowed_list:\t1\n");
    const threads = path.join(path.dirname(roots.sysfs), "tasks");
    fs.writeFileSync(threads, "41\n42\n43\n"); // 43 is gone: skipped
    expect(readThreadIds(threads)).toEqual([41, 42, 43]);
    expect(readReachableCpus({ ...roots, procfs }, "weir/web", threads)?.cpus).toEqual([1]);
    // no thread: the cpuset (here the online CPUs) alone
    fs.writeFileSync(threads, "");
    expect(readReachableCpus({ ...roots, procfs }, "weir/web", threads)?.cpus).toEqual([0, 1]);
  });
});

describe("ReachableCpusReader", () => {
  it("answers as readReachableCpus on v1, v2 and hybrid trees, with and without threads", () => {
    const trees = [
      tree({ [ONLINE]: "0-3\n", "cgroup/cpuset/weir/web/cpuset.effective_cpus": "1-2\n" }),
      tree({
        [ONLINE]: "0-7\n",
        "cgroup/cgroup.controllers": "cpuset cpu\n",
        "cgroup/weir/cpuset.cpus.effective": "2-5\n",
        "cgroup/weir/web/cgroup.controllers": "cpu\n",
      }),
      tree({
        [ONLINE]: "0-1\n",
        "cgroup/unified/cgroup.controllers": "hugetlb\n",
        "cgroup/unified/weir/web/cgroup.controllers": "\n",
      }),
      tree({}),
    ];
    for (const roots of trees) {
      const procfs = path.join(path.dirname(roots.sysfs), "proc");
      fs.mkdirSync(path.join(procfs, "41"), { recursive: true });
      fs.writeFileSync(path.join(procfs, "41", "status"), "Cpus_allowed_list:\t1-2\n");
      const threads = path.join(path.dirname(roots.sysfs), "tasks");
      const reader = new ReachableCpusReader({ ...roots, procfs });
      for (const tids of ["", "41\n"]) {
        fs.writeFileSync(threads, tids);
        expect(reader.read("weir/web", threads)).toEqual(
          readReachableCpus({ ...roots, procfs }, "weir/web", threads),
        );
      }
    }
  });

  it("reads the online CPUs again once ONLINE_CPUS_REUSE_MS have passed", () => {
    const roots = tree({ [ONLINE]: "0-3\n" });
    const procfs = path.join(path.dirname(roots.sysfs), "proc");
    const threads = path.join(path.dirname(roots.sysfs), "tasks");
    fs.writeFileSync(threads, "");
    let now = 0;
    const reader = new ReachableCpusReader({ ...roots, procfs }, () => now);
    expect(reader.read("weir/web", threads)?.cpus).toEqual([0, 1, 2, 3]);
    fs.writeFileSync(path.join(roots.sysfs, "devices/system/cpu/online"), "0-1\n");
    now = ONLINE_CPUS_REUSE_MS - 1;
    expect(reader.read("weir/web", threads)?.cpus).toEqual([0, 1, 2, 3]);
    now = ONLINE_CPUS_REUSE_MS;
    expect(reader.read("weir/web", threads)?.cpus).toEqual([0, 1]);
  });

  it("reads its cpuset file on every call, and looks for the files again when it is gone or CPUSET_FILE_RECHECK_MS have passed", () => {
    const roots = tree({
      [ONLINE]: "0-7\n",
      "cgroup/cgroup.controllers": "cpuset cpu\n",
      "cgroup/weir/cpuset.cpus.effective": "2-5\n",
      "cgroup/weir/web/cgroup.controllers": "cpu\n",
    });
    const procfs = path.join(path.dirname(roots.sysfs), "proc");
    const threads = path.join(path.dirname(roots.sysfs), "tasks");
    fs.writeFileSync(threads, "");
    let now = 0;
    const reader = new ReachableCpusReader({ ...roots, procfs }, () => now);
    const read = () => reader.read("weir/web", threads);
    expect(read()?.cpus).toEqual([2, 3, 4, 5]);
    // the kept file's CPUs change: seen on the next call
    fs.writeFileSync(path.join(roots.cgroupfs, "weir/cpuset.cpus.effective"), "3-4\n");
    now = 1;
    expect(read()?.cpus).toEqual([3, 4]);
    // a nearer cpuset appears: seen once CPUSET_FILE_RECHECK_MS have passed since the look
    fs.writeFileSync(path.join(roots.cgroupfs, "weir/web/cpuset.cpus.effective"), "4\n");
    now = CPUSET_FILE_RECHECK_MS - 1;
    expect(read()?.cpus).toEqual([3, 4]);
    now = CPUSET_FILE_RECHECK_MS;
    expect(read()?.cpus).toEqual([4]);
    expect(read()).toEqual(readReachableCpus({ ...roots, procfs }, "weir/web", threads));
    // the kept file goes: the files are looked for again on that call (the ancestor's)
    fs.rmSync(path.join(roots.cgroupfs, "weir/web/cpuset.cpus.effective"));
    now += 1;
    expect(read()?.cpus).toEqual([3, 4]);
    // no cpuset file left: the online CPUs
    fs.rmSync(path.join(roots.cgroupfs, "weir/cpuset.cpus.effective"));
    now += 1;
    expect(read()).toEqual({
      cpus: [0, 1, 2, 3, 4, 5, 6, 7],
      source: path.join(roots.sysfs, "devices/system/cpu/online"),
    });
  });

  it("returns the same answer object while nothing it reads changed, a new one when the threads' affinity does", () => {
    const roots = tree({
      [ONLINE]: "0-3\n",
      "cgroup/cpuset/weir/web/cpuset.effective_cpus": "0-2\n",
    });
    const procfs = path.join(path.dirname(roots.sysfs), "proc");
    fs.mkdirSync(path.join(procfs, "41"), { recursive: true });
    fs.writeFileSync(path.join(procfs, "41", "status"), "Cpus_allowed_list:\t0-3\n");
    const threads = path.join(path.dirname(roots.sysfs), "tasks");
    fs.writeFileSync(threads, "");
    let now = 0;
    const reader = new ReachableCpusReader({ ...roots, procfs }, () => now);
    const first = reader.read("weir/web", threads);
    expect(first?.cpus).toEqual([0, 1, 2]);
    now = 2 * ONLINE_CPUS_REUSE_MS; // the online CPUs read again, the same
    expect(reader.read("weir/web", threads)).toBe(first);
    fs.writeFileSync(threads, "41\n"); // a thread that may run anywhere: the same CPUs
    const withThread = reader.read("weir/web", threads);
    expect(withThread?.cpus).toEqual([0, 1, 2]);
    expect(reader.read("weir/web", threads)).toBe(withThread);
    // the thread pinned to CPU 1 (taskset): seen on the next call, without a new thread
    fs.writeFileSync(path.join(procfs, "41", "status"), "Cpus_allowed_list:\t1\n");
    expect(reader.read("weir/web", threads)?.cpus).toEqual([1]);
    expect(reader.read("weir/web", threads)).toEqual(
      readReachableCpus({ ...roots, procfs }, "weir/web", threads),
    );
    // a second partition has an answer of its own
    expect(reader.read("weir/db", threads)?.cpus).toEqual([1]);
    fs.writeFileSync(threads, "");
    expect(reader.read("weir/db", threads)?.cpus).toEqual([0, 1, 2, 3]);
    expect(reader.read("weir/web", threads)?.cpus).toEqual([0, 1, 2]);
  });
  it("holds each partition's threads file: one descriptor across reads, given back by close(), opened again when the file is back", () => {
    const roots = tree({ [ONLINE]: "0-3\n" });
    const procfs = path.join(path.dirname(roots.sysfs), "proc");
    fs.mkdirSync(path.join(procfs, "41"), { recursive: true });
    fs.writeFileSync(path.join(procfs, "41", "status"), "Cpus_allowed_list:\t2\n");
    const threads = path.join(path.dirname(roots.sysfs), "tasks");
    fs.writeFileSync(threads, "");
    const reader = new ReachableCpusReader({ ...roots, procfs }, () => 0);
    const fds = () => fs.readdirSync("/proc/self/fd").length;
    expect(reader.read("weir/web", threads)?.cpus).toEqual([0, 1, 2, 3]);
    const held = fds();
    for (let i = 0; i < 5; i++) reader.read("weir/web", threads);
    expect(fds()).toBe(held);
    fs.writeFileSync(threads, "41\n"); // rewritten in place: seen on the held descriptor
    expect(reader.read("weir/web", threads)?.cpus).toEqual([2]);
    reader.close();
    expect(fds()).toBe(held - 1);
    // no threads file: no thread (the online CPUs), nothing held; opened again once it is back
    fs.rmSync(threads);
    expect(reader.read("weir/web", threads)?.cpus).toEqual([0, 1, 2, 3]);
    expect(fds()).toBe(held - 1);
    fs.writeFileSync(threads, "41\n");
    expect(reader.read("weir/web", threads)?.cpus).toEqual([2]);
    expect(fds()).toBe(held);
    reader.close();
  });
});
