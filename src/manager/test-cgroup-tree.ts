// A temporary cgroup v2 tree for tests (cpus-check, startManager, `weir validate`, `weir run
// --once`, the reload): the tree a `weir run` SIGKILLed while placing left behind, with its state file. Not
// part of weir; only tests import it.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export interface KilledPlacementTree {
  /** The temporary directory holding it all. */
  root: string;
  /** The tree's roots, as a config's `roots:` gives them. */
  roots: { cgroupfs: string; sysfs: string; procfs: string };
  /** The state file the killed run left: p1's cpuset.cpus was found empty. */
  stateFile: string;
  /** Writes `text` to `rel` under the root, making its folders. */
  write(rel: string, text: string): void;
  /** Writes the state file anew with these found cpusets (and no found values). */
  writeState(foundCpusets: Record<string, unknown>): void;
  /**
   * Writes weir.yaml under the root: capacity 4 CPUs, the tree's roots and state file,
   * `placement.mode` as given, p1 (network) and hog (batch). Returns its path.
   */
  configFile(mode: "spread" | "off"): string;
  /** p1's cpuset.cpus as it is now. */
  cpusetOfP1(): string;
  /** Removes the whole tree. */
  remove(): void;
}

/** A temporary directory (the caller removes it) and a writer of files under it, folders made. */
export function tempTree(prefix: string): {
  root: string;
  write: (rel: string, text: string) => void;
} {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const write = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  };
  return { root, write };
}

/**
 * A host as a manager reads it, under a temporary directory (the caller removes `root`): a
 * cgroup v2 root with the cpu controller at `cg/`, `cpus` CPUs online under `sys/`, `/proc`'s
 * net/dev (lo, no packet) and stat under `proc/`; `roots` is the config's `roots:` for it.
 */
export function tempV2Host(
  prefix: string,
  cpus: number,
): {
  root: string;
  write: (rel: string, text: string) => void;
  roots: { cgroupfs: string; sysfs: string; procfs: string };
} {
  const { root, write } = tempTree(prefix);
  write("sys/devices/system/cpu/online", cpus > 1 ? `0-${cpus - 1}\n` : "0\n");
  write("cg/cgroup.controllers", "cpu\n");
  write(
    "proc/net/dev",
    [
      "Inter-|   Receive                                                |  Transmit",
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
      "    lo: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
      "",
    ].join("\n"),
  );
  write("proc/stat", "cpu  0 0 0 0 0 0 0 0 0 0\n");
  const roots = {
    cgroupfs: path.join(root, "cg"),
    sysfs: path.join(root, "sys"),
    procfs: path.join(root, "proc"),
  };
  return { root, write, roots };
}

/**
 * A v2 cgroup's files as the v2 backend and sensors read them, at `dir` (relative to the tree):
 * `controllers`, the weight given, no cap, not idle, no CPU used yet, no thread.
 */
export function writeV2Partition(
  write: (rel: string, text: string) => void,
  dir: string,
  controllers: string,
  weight = 100,
): void {
  write(`${dir}/cgroup.controllers`, `${controllers}\n`);
  write(`${dir}/cpu.weight`, `${weight}\n`);
  write(`${dir}/cpu.max`, "max 100000\n");
  write(`${dir}/cpu.idle`, "0\n");
  write(`${dir}/cpu.stat`, "usage_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n");
  write(`${dir}/cgroup.threads`, "");
}

/**
 * A cgroup v2 tree under a temporary directory as a run killed while placing p1 left it: 4 CPUs
 * online, weir/ with CPUs 0-3, network partition weir/p1 and batch partition weir/hog (each with
 * the cpu and cpuset files the v2 backend and sensors read), p1's cpuset.cpus narrowed to CPU 0
 * by the killed run's placement, and a state file (state.json) saying it was found empty (the
 * parent's CPUs). The caller removes it (`remove()`).
 */
export function killedPlacementTree(): KilledPlacementTree {
  const { root, write } = tempTree("weir-killed-placement-");
  write("sys/devices/system/cpu/online", "0-3\n");
  write("cg/cgroup.controllers", "cpuset cpu\n");
  write("cg/weir/cpuset.cpus.effective", "0-3\n");
  for (const p of ["p1", "hog"]) {
    writeV2Partition(write, `cg/weir/${p}`, "cpuset cpu");
    write(`cg/weir/${p}/cpuset.cpus`, "\n");
    write(`cg/weir/${p}/cpuset.cpus.effective`, "0-3\n");
  }
  write("cg/weir/p1/cpuset.cpus", "0\n");
  write("cg/weir/p1/cpuset.cpus.effective", "0\n");
  const stateFile = path.join(root, "state.json");
  const writeState = (foundCpusets: Record<string, unknown>) =>
    write(
      "state.json",
      JSON.stringify({
        version: 1,
        savedAtMs: Date.now(),
        policyState: { partitions: {} },
        found: {},
        foundCpusets,
      }),
    );
  writeState({ p1: "" });
  const roots = {
    cgroupfs: path.join(root, "cg"),
    sysfs: path.join(root, "sys"),
    procfs: path.join(root, "proc"),
  };
  return {
    root,
    roots,
    stateFile,
    write,
    writeState,
    configFile: (mode) => {
      const file = path.join(root, "weir.yaml");
      fs.writeFileSync(
        file,
        [
          "capacity: { cpus: 4 }",
          `roots: ${JSON.stringify(roots)}`,
          `stateFile: ${JSON.stringify(stateFile)}`,
          `placement: { mode: ${mode} }`,
          "partitions:",
          "  - { name: p1, cgroup: weir/p1, interfaces: [veth-p1] }",
          "  - { name: hog, cgroup: weir/hog, kind: batch }",
          "",
        ].join("\n"),
      );
      return file;
    },
    cpusetOfP1: () => fs.readFileSync(path.join(root, "cg/weir/p1/cpuset.cpus"), "utf8"),
    remove: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}
