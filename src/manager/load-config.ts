// Read a YAML config file and validate it. I/O edge of config.ts.
import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { type Config, parseConfig } from "./config.ts";

export function parseConfigText(text: string, source: string): Config {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new WeirError(
      ErrorCodes.CONFIG_PARSE,
      `${source}: not valid YAML at line ${e.linePos?.[0]?.line ?? "?"}, column ${e.linePos?.[0]?.col ?? "?"}: ${e.message.split("\n")[0]}`,
    );
  }
  return parseConfig(doc.toJS(), source);
}

export function loadConfigFile(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new WeirError(
      ErrorCodes.CONFIG_NOT_FOUND,
      `cannot read config file ${path}: ${code === "ENOENT" ? "no such file" : code}`,
    );
  }
  return parseConfigText(text, path);
}
