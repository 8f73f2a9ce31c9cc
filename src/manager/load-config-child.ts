// The child process of load-config-apart.ts: reads and validates the config file it is given
// (its one argument) and writes the config, or the error, to stdout (v8.serialize, base64);
// then it ends.
import v8 from "node:v8";
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

process.stdout.write(v8.serialize(reply(process.argv[2] ?? "")).toString("base64"));
