// A small cross-process lock (a file created with O_EXCL holding the owner's pid), so
// testbeds set up at the same moment never pick the same addresses. A lock whose owner
// died (even by SIGKILL) is taken over.
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { isAlive } from "./procs.ts";

const mtimeMs = (file: string): number => {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return Date.now();
  }
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function withFileLock<T>(
  file: string,
  fn: () => Promise<T>,
  opts: { timeoutMs?: number; procfs?: string } = {},
): Promise<T> {
  mkdirSync(dirname(file), { recursive: true });
  const until = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    try {
      const fd = openSync(file, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      let owner = Number.NaN;
      try {
        owner = Number(readFileSync(file, "utf8"));
      } catch {
        continue; // released meanwhile
      }
      const ownerDied =
        Number.isInteger(owner) && owner > 0 && !isAlive(owner, undefined, opts.procfs);
      // An empty lock file is one whose owner died between creating and writing it.
      const emptyAndOld = !(owner > 0) && Date.now() - mtimeMs(file) > 5000;
      if (ownerDied || emptyAndOld) {
        try {
          unlinkSync(file);
        } catch {
          // someone else took it over first
        }
        continue;
      }
      if (Date.now() > until) {
        throw new WeirError(ErrorCodes.TESTBED, `lock ${file} held by pid ${owner} for too long`);
      }
      await sleep(25);
    }
  }
  try {
    return await fn();
  } finally {
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  }
}
