// `weir run -c <config> --json` as the e2e tests start it: the package's bin, stdout ignored,
// stderr (its log) collected, the child recorded in the caller's list so its afterAll kills
// what is still running.
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";

const REPO = path.resolve(import.meta.dirname, "../..");

export interface WeirRun {
  child: ChildProcess;
  /** Resolves with the exit code (null: killed by a signal). */
  exited: Promise<number | null>;
  /** The log so far. */
  err: () => string;
}

export function spawnWeirRun(cfg: string, children: ChildProcess[]): WeirRun {
  const child = spawn(
    process.execPath,
    [path.join(REPO, "bin/weir.js"), "run", "-c", cfg, "--json"],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  children.push(child);
  let err = "";
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return { child, exited, err: () => err };
}
