// What runs in a guest and how the host hears from it. The per-guest script (pure) runs
// inside the guest root it mounted over 9p (src/vm/guest-root.ts); the serial console (a file on the host)
// carries the guest kernel's own messages — "smpboot: Booting Node 0 Processor 1" when a
// CPU comes online, "smpboot: CPU 1 is now offline" when it goes — which is how the host
// observes that the guest applied a vCPU change, and /init's and the agent's log lines.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

export interface GuestAgentSpec {
  /** The compiled CLI, <package>/dist/src/cli/main.js (the guest sees the same path over 9p). */
  weirEntry: string;
  /** Node on the host (the same path in the guest root). */
  nodeBin: string;
  partitionIndex: number;
  intervalMs: number;
  /** Extra `weir agent` arguments. */
  extraArgs?: string[];
  /**
   * A packet server to start in the guest before the agent (the testbed's, src/testbed/
   * server.ts: every UDP request costs `costRounds` chained SHA-256 rounds), listening on
   * `port` on the guest's NIC; `entry` is the compiled serve-entry.js (the same path over 9p).
   */
  server?: { entry: string; port: number; costRounds: number; maxLifetimeMs: number };
}

/** In the guest, /init copies the per-guest files (fw_cfg items) here. */
export const GUEST_FILES_DIR = "/tmp/weir";
/** The per-guest files, by their fw_cfg name (`opt/weir/<name>`) and their name in GUEST_FILES_DIR. */
export const GUEST_FILES = ["run.sh", "key"] as const;

const shellQuote = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;

/**
 * The guest's run script: `weir agent` over the ivshmem region (its partition's own), CPU
 * use from the guest's /proc/stat, CPUs onlined/offlined to match each directive.
 */
export function agentRunScript(a: GuestAgentSpec): string {
  const argv = [
    a.nodeBin,
    a.weirEntry,
    "agent",
    "--index",
    String(a.partitionIndex),
    "--key-file",
    `${GUEST_FILES_DIR}/key`,
    "--transport",
    "shm",
    "--ivshmem",
    "--cgroup",
    "none",
    "--cpu-online",
    "--interval-ms",
    String(a.intervalMs),
    "--json",
    ...(a.extraArgs ?? []),
  ];
  const server = a.server
    ? `${[
        a.nodeBin,
        a.server.entry,
        "--port",
        String(a.server.port),
        "--tcp-port",
        "off",
        "--cost-rounds",
        String(a.server.costRounds),
        "--max-lifetime-ms",
        String(a.server.maxLifetimeMs),
      ]
        .map(shellQuote)
        .join(" ")} 2>&1 &\necho "weir-vm: packet server started"\n`
    : "";
  return `#!/bin/sh
# weir guest run script (written by the host; runs in the guest's chroot of the host root)
${server}echo "weir-vm: agent starting"
exec ${argv.map(shellQuote).join(" ")} 2>&1
`;
}

/**
 * Reads a growing file from where it last stopped (the serial console log), so waiting for
 * a line never re-matches what came before `mark()`.
 */
export class LogTail {
  private readonly file: string;
  private offset = 0;
  private text = "";
  private readonly keepText: boolean;

  /**
   * `keepText: false` keeps nothing of what was read (for a reader that only consumes
   * `read()`, like a long-running actuator: the console grows for the guest's lifetime).
   */
  constructor(file: string, opts: { fromEnd?: boolean; keepText?: boolean } = {}) {
    this.file = file;
    this.keepText = opts.keepText ?? true;
    if (opts.fromEnd) this.offset = this.size();
  }

  private size(): number {
    try {
      const fd = openSync(this.file, "r");
      try {
        return fstatSync(fd).size;
      } finally {
        closeSync(fd);
      }
    } catch {
      return 0;
    }
  }

  /** New text since the last read (also kept for `find`). */
  read(): string {
    let fd: number;
    try {
      fd = openSync(this.file, "r");
    } catch {
      return "";
    }
    try {
      const buf = Buffer.alloc(64 * 1024);
      let out = "";
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        out += buf.toString("utf8", 0, n);
      }
      if (this.keepText) this.text += out;
      return out;
    } finally {
      closeSync(fd);
    }
  }

  /** Forget what was read so far: later waits match only lines written after this. */
  mark(): void {
    this.read();
    this.text = "";
  }

  /**
   * Wait until a line matching `re` appears after the mark; resolves with the line and the
   * wall time it was seen (polled every `pollMs`), or null on timeout.
   */
  async waitFor(
    re: RegExp,
    timeoutMs: number,
    opts: { pollMs?: number; signal?: AbortSignal } = {},
  ): Promise<{ line: string; atMs: number } | null> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      this.read();
      const line = this.text.split("\n").find((l) => re.test(l));
      if (line !== undefined) return { line, atMs: Date.now() };
      if (Date.now() >= until || opts.signal?.aborted) return null;
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 50));
    }
  }

  /** Everything read since the last mark (for error messages). */
  get seen(): string {
    return this.text;
  }
}
