// Read and validate a config file in a short-lived child process, for `weir run`: the process
// that runs the manager then never loads the YAML parser or the config's schema library (zod).
// Node cannot unload a module, and those two, the schema objects they build and what parsing
// leaves behind stayed resident for the life of the service (docs/performance.md has the
// figures). A worker thread would do the same in-process, but its isolate's pages stay behind
// after it ends (about 5 MB resident, measured); a child leaves nothing. What comes back on its
// stdout is the validated config (v8.serialize: the structured clone a worker's message uses;
// the config is plain data) or a WeirError as its code and message, thrown here as the same
// error.
// From the TypeScript sources (tsx, vitest) the child could not load the .ts entry without the
// loader: the file is then read and validated in this process, with the same result.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import { type ErrorCode, WeirError } from "../core/errors.ts";
import { RUNS_COMPILED, siblingModuleUrl } from "../core/package-files.ts";
import type { Config } from "./config.ts";

/** What the child (load-config-child.ts) writes back: exactly one of the three. */
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
  const child = fileURLToPath(siblingModuleUrl("load-config-child", import.meta.url));
  const reply = await new Promise<ConfigReply>((resolve, reject) => {
    // Node's own binary without the service's node flags: a child that reads one file needs
    // none of them, and some must not be repeated (--inspect's port, --cpu-prof's file, a
    // --require'd hook); it reads the file it is given and writes one reply.
    execFile(
      process.execPath,
      [child, file],
      { encoding: "buffer", maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (stdout.length > 0) {
          try {
            resolve(
              v8.deserialize(Buffer.from(stdout.toString("latin1"), "base64")) as ConfigReply,
            );
            return;
          } catch {
            // not a reply: fall through to the child's failure
          }
        }
        reject(
          new Error(
            `reading the config: the child process ended without a reply (${err?.message ?? "no output"}${stderr.length > 0 ? `: ${stderr.toString("utf8").trim()}` : ""})`,
          ),
        );
      },
    );
  });
  return configFromReply(reply);
}
