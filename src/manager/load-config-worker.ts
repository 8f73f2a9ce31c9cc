// The worker thread of load-config-apart.ts: reads and validates the config file it is given
// (workerData.file) and posts the config, or the error, back; then it ends.
import { parentPort, workerData } from "node:worker_threads";
import { isWeirError } from "../core/errors.ts";
import { loadConfigFile } from "./load-config.ts";
import type { ConfigReply } from "./load-config-apart.ts";

function reply(file: string): ConfigReply {
  try {
    return { config: loadConfigFile(file) };
  } catch (err) {
    if (isWeirError(err)) return { error: { code: err.code, message: err.message } };
    return { failure: err instanceof Error ? (err.stack ?? err.message) : String(err) };
  }
}

parentPort?.postMessage(reply((workerData as { file: string }).file));
