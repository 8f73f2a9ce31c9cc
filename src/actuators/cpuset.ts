// A partition's cpuset.cpus, for placement (src/policy/placement.ts): cgroup v1 in the cpuset
// hierarchy at the partition's own path (`<cgroupfs>/cpuset/<path>`), cgroup v2 in the
// partition's unified directory, where the file exists only once its parent's
// cgroup.subtree_control enables the cpuset controller. weir creates no cpuset and moves no
// task: a partition without one is not placed (openCpusetFile throws TARGET_NOT_WRITABLE).
//
// The file is written only when the list differs from what it last held (a write makes the
// kernel migrate the group's tasks and rebuild scheduling domains), in the kernel's own list
// format ("0-1", "1,3") so an unchanged list compares equal. The value found at open is the
// snapshot: `place(null)` and `restore()` write it back.
import fs from "node:fs";
import path from "node:path";
import { detectCgroupLayout, normalizeCgroupPath } from "../cgroup/layout.ts";
import { partitionCgroup } from "../cgroup/paths.ts";
import { formatCpuList } from "../cgroup/values.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { PartitionId } from "../core/model.ts";
import { classifyWriteError } from "./engine.ts";
import type { CpusetActuator, CpusetResult } from "./types.ts";

export const CPUSET_FILE = "cpuset.cpus";

const NOTHING: string[] = Object.freeze([]) as unknown as string[];

/**
 * The directory whose `cpuset.cpus` is the partition's: v1 the cpuset hierarchy at its path,
 * v2 its own directory (found through the layout under `cgroupfs`).
 */
export function cpusetDirOf(cgroupfs: string, cgroupPath: string): string {
  const layout = detectCgroupLayout(cgroupfs);
  if (layout.version === 2) return partitionCgroup(layout, cgroupPath).cpu;
  return path.join(cgroupfs, "cpuset", normalizeCgroupPath(cgroupPath));
}

/**
 * Open `dir`'s cpuset.cpus: read what it holds (the snapshot, unless `foundBefore` gives the
 * value a manager found before its first write, from its state file). Throws
 * TARGET_NOT_WRITABLE when the file is not there (no cpuset for this cgroup) or cannot be read.
 */
export function openCpusetFile(
  backend: string,
  partition: PartitionId,
  dir: string,
  foundBefore?: string,
): CpusetActuator {
  const file = path.join(dir, CPUSET_FILE);
  let found: string;
  try {
    found = fs.readFileSync(file, "latin1").trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new WeirError(
      ErrorCodes.TARGET_NOT_WRITABLE,
      `[${backend}] partition ${partition} has no cpuset: ${file} ${code === "ENOENT" ? "does not exist (no cpuset cgroup at the partition's path, or the cpuset controller is not enabled for it)" : `cannot be read (${code})`}`,
      { cause: err },
    );
  }
  return new CpusetFile(backend, partition, file, foundBefore ?? found, found);
}

class CpusetFile implements CpusetActuator {
  private held: string;
  private closed = false;

  constructor(
    private readonly backend: string,
    readonly partition: PartitionId,
    readonly file: string,
    readonly found: string,
    /** What the file holds at open. */
    now: string,
  ) {
    this.held = now;
  }

  place(cpus: readonly number[] | null): CpusetResult {
    return this.write(cpus === null ? this.found : formatCpuList(cpus));
  }

  restore(): CpusetResult {
    return this.write(this.found);
  }

  current(): string {
    return this.held;
  }

  close(): void {
    this.closed = true;
  }

  private write(value: string): CpusetResult {
    if (this.closed)
      return {
        written: NOTHING,
        error: new WeirError(
          ErrorCodes.DIRECTIVE_INVALID,
          `[${this.backend}] cpuset of ${this.partition} is closed`,
          { retryable: false },
        ).toInfo(),
      };
    if (value === this.held) return { written: NOTHING };
    try {
      fs.writeFileSync(this.file, `${value}\n`, "latin1");
    } catch (err) {
      return {
        written: NOTHING,
        error: classifyWriteError(this.backend, this.file, value, err).toInfo(),
      };
    }
    this.held = value;
    return { written: [CPUSET_FILE] };
  }
}
