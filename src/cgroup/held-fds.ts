// How many file descriptors weir holds open on kernel files (counter files, cgroup knobs) at
// once. Sensors and actuators hold one per file they read or write every cycle (a pread on a
// held descriptor costs a fifth of open-read-close); at 10,000 partitions that is more than
// the process may open (RLIMIT_NOFILE), and the API's sockets, the state file and agents'
// files need descriptors too. So holding is budgeted: past the budget a file is opened for
// each read or write and closed again (slower, bounded), never an EMFILE. The limit is the
// hard one: Node raises the soft RLIMIT_NOFILE to the hard limit when it starts (as Go's
// runtime does), so a systemd unit's LimitNOFILE= is what counts.
import { readFileSync } from "node:fs";

/** Descriptors kept free for everything else (sockets, state file, logs, agents' files). */
export const FD_RESERVE = 1024;

/** The soft "Max open files" limit from the text of /proc/<pid>/limits; null when absent or unlimited. */
export function softOpenFilesLimit(limitsText: string): number | null {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limitsText);
  if (!m || m[1] === "unlimited") return null;
  const n = Number(m[1]);
  return Number.isInteger(n) && n > 0 ? n : null;
}

/** The budget for a soft limit: all but FD_RESERVE, and at least half of it. */
export const heldFdLimitFor = (softLimit: number | null): number =>
  softLimit === null
    ? Number.POSITIVE_INFINITY
    : Math.max(Math.floor(softLimit / 2), softLimit - FD_RESERVE);

export class HeldFdBudget {
  #held = 0;
  constructor(readonly limit: number) {}
  /** Takes one descriptor from the budget; false when it is spent (open for each use instead). */
  take(): boolean {
    if (this.#held >= this.limit) return false;
    this.#held++;
    return true;
  }
  /** Gives back one taken descriptor. */
  give(): void {
    if (this.#held > 0) this.#held--;
  }
  get held(): number {
    return this.#held;
  }
}

function processLimit(): number {
  try {
    return heldFdLimitFor(softOpenFilesLimit(readFileSync("/proc/self/limits", "latin1")));
  } catch {
    return heldFdLimitFor(1024); // the usual default soft limit
  }
}

/** The process's budget, shared by every sensor and actuator. */
export const heldFds = new HeldFdBudget(processLimit());
