// The host's `<procfs>/net/dev`: every interface's packet and drop counters in one file, held
// open once per procfs root and shared by every partition's `interfaces` source. Sampling 100
// partitions with one interface each reads it once per cycle instead of 300 sysfs files
// (docs/performance.md). Reads given the same `SampleRound` (the manager makes one per cycle)
// share one read and one parse; a read without a round always reads the file again.
import fs from "node:fs";
import path from "node:path";
import { HeldFile } from "./held-file.ts";
import { type InterfaceCounters, parseNetDev } from "./parse.ts";
import type { SampleRound } from "./types.ts";

export const hostNetDevPath = (procfs: string): string => path.join(procfs, "net/dev");

/** One opening of the shared file; `close` is idempotent. */
export interface HostNetDev {
  readonly path: string;
  /** Every interface's counters: from this round's read when there was one, else read now. */
  read(round?: SampleRound): ReadonlyMap<string, InterfaceCounters>;
  close(): void;
}

class SharedNetDev {
  readonly file: HeldFile;
  users = 0;
  private round: SampleRound | undefined;
  private table: Map<string, InterfaceCounters> | undefined;
  /** The text `table` was parsed from. */
  private text: string | undefined;

  constructor(file: string) {
    this.file = new HeldFile(file, { sizeHint: 4096, reopenOnStale: true });
  }

  read(round: SampleRound | undefined): ReadonlyMap<string, InterfaceCounters> {
    if (round !== undefined && round === this.round && this.table !== undefined) return this.table;
    // a read that throws leaves nothing for the round's other partitions to reuse
    this.round = undefined;
    const text = this.file.read();
    // the same text parses to the same counters: parsed again only when a counter moved (an
    // idle host's lines stay as they were for many cycles; no staleness, the file is read)
    if (this.table === undefined || text !== this.text) {
      this.text = undefined;
      this.table = parseNetDev(text, this.file.path);
      this.text = text;
    }
    this.round = round;
    return this.table;
  }
}

const shared = new Map<string, SharedNetDev>();

/**
 * Opens (or joins) the shared `<procfs>/net/dev`; null when the file is not there (a tree
 * with sysfs counters only: the caller reads sysfs). Throws what opening it throws otherwise.
 */
export function openHostNetDev(procfs: string): HostNetDev | null {
  const file = hostNetDevPath(procfs);
  let s = shared.get(file);
  if (s === undefined) {
    if (!fs.existsSync(file)) return null;
    s = new SharedNetDev(file);
    shared.set(file, s);
  }
  const net = s;
  net.users++;
  let closed = false;
  return {
    path: file,
    read: (round) => net.read(round),
    close() {
      if (closed) return;
      closed = true;
      if (--net.users > 0) return;
      net.file.close();
      shared.delete(file);
    },
  };
}
