// Which partition errors `weir run` logs as warnings: the first of a run of the same status and
// code, not every cycle of it. A write the kernel keeps refusing (WEIR_APPLY_FAILED, retried
// every cycle) otherwise logged one warning per cycle — ten a second at the default interval,
// for as long as it lasted — and a vanished cgroup one per retry. The repeats are counted
// (metrics, the cycle records), and said once when the partition is ok again.

/** One partition's run of errors: what was logged, and how many repeats were not. */
interface Streak {
  key: string;
  repeats: number;
}

export class PartitionErrorLog {
  private readonly streaks = new Map<string, Streak>();

  /** Whether this error is worth a warning: not a repeat of the partition's last one (same status and code). */
  report(partition: string, status: string, code: string): boolean {
    const key = `${status} ${code}`;
    const s = this.streaks.get(partition);
    if (s?.key === key) {
      s.repeats++;
      return false;
    }
    this.streaks.set(partition, { key, repeats: 0 });
    return true;
  }

  /** Partitions with an open streak (none: nothing to look up in a cycle's record). */
  get size(): number {
    return this.streaks.size;
  }

  /** The partition's status this cycle: when ok, its streak ends; returns its repeats then, else null. */
  observe(partition: string, status: string): number | null {
    if (status !== "ok") return null;
    const s = this.streaks.get(partition);
    if (!s) return null;
    this.streaks.delete(partition);
    return s.repeats;
  }
}
