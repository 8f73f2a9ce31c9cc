// A temporary cgroup v2 tree for tests (cpus-check, startManager, `weir validate`, `weir run
// --once`): the tree a `weir run` SIGKILLed while placing left behind, with its state file. Not
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

/**
 * A cgroup v2 tree under a temporary directory as a run killed while placing p1 left it: 4 CPUs
 * online, weir/ with CPUs 0-3, network partition weir/p1 and batch partition weir/hog (each with
 * the cpu and cpuset files the v2 backend and sensors read), p1's cpuset.cpus narrowed to CPU 0
 * by the killed run's placement, and a state file (state.json) saying it was found empty (the
 * parent's CPUs). The caller removes it (`remove()`).
 */
export function killedPlacementTree(): KilledPlacementTree {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "weir-killed-placement-"));
  const write = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  };
  write("sys/devices/system/cpu/online", "0-3\n");
  write("cg/cgroup.controllers", "cpuset cpu\n");
  write("cg/weir/cpuset.cpus.effective", "0-3\n");
  for (const p of ["p1", "hog"]) {
    write(`cg/weir/${p}/cgroup.controllers`, "cpuset cpu\n");
    write(`cg/weir/${p}/cpu.weight`, "100\n");
    write(`cg/weir/${p}/cpu.max`, "max 100000\n");
    write(`cg/weir/${p}/cpu.idle`, "0\n");
    write(
      `cg/weir/${p}/cpu.stat`,
      "usage_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
    );
    write(`cg/weir/${p}/cgroup.threads`, "");
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
