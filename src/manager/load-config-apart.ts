// Read and validate a config file on a worker thread, for `weir run`: the process that runs the
// manager then never loads the YAML parser or the config's schema library (zod). Node cannot
// unload a module, and those two, the schema objects they build and what parsing leaves behind
// stayed resident for the life of the service (docs/performance.md has the figures). The
// worker's isolate and everything it loaded go when it exits. What comes back is the validated
// config as a plain object (a structured clone: the config is plain data) or a WeirError as its
// code and message, thrown here as the same error.
// From the TypeScript sources (tsx, vitest) a worker cannot load the .ts entry: the file is
// then read and validated on this thread, with the same result.
import { Worker } from "node:worker_threads";
import { type ErrorCode, WeirError } from "../core/errors.ts";
import { RUNS_COMPILED, siblingModuleUrl } from "../core/package-files.ts";
import type { Config } from "./config.ts";

/** What the worker (load-config-worker.ts) posts back: exactly one of the three. */
export type ConfigReply =
  | { config: Config }
  | { error: { code: ErrorCode; message: string } }
  | { failure: string };

/** The config the reply carries, or the error it stands for, thrown. */
export function configFromReply(reply: ConfigReply): Config {
  if ("config" in reply) return reply.config;
  if ("error" in reply) throw new WeirError(reply.error.code, reply.error.message);
  throw new Error(`reading the config failed: ${reply.failure}`);
}

/** `loadConfigFile(file)` (load-config.ts) without loading its modules into this isolate. */
export async function loadConfigFileApart(file: string): Promise<Config> {
  if (!RUNS_COMPILED) {
    const { loadConfigFile } = await import("./load-config.ts");
    return loadConfigFile(file);
  }
  const worker = new Worker(siblingModuleUrl("load-config-worker", import.meta.url), {
    workerData: { file },
  });
  const reply = await new Promise<ConfigReply>((resolve, reject) => {
    let got: ConfigReply | undefined;
    worker.once("message", (m: ConfigReply) => {
      got = m;
    });
    worker.once("error", reject);
    worker.once("exit", (code) =>
      got
        ? resolve(got)
        : reject(new Error(`reading the config: the worker exited (${code}) without a reply`)),
    );
  });
  return configFromReply(reply);
}
