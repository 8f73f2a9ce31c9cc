import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";

const BIN = path.resolve(import.meta.dirname, "../../bin/weir.js");
const weir = (...args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    env: { ...process.env, WEIR_FROM_SOURCE: "1" },
    timeout: 60_000,
  });

describe("weir's exit status for commander's own usage errors", () => {
  it("is 2, like a bad option's value (commander's 1 before); --help and --version are 0", () => {
    const missing = weir("run");
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("required option '-c, --config <file>' not specified");
    const unknown = weir("validate", "-c", "weir.yaml", "--nope");
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("unknown option '--nope'");
    expect(weir("nosuch").status).toBe(2);
    expect(weir("--help").status).toBe(0);
    expect(weir("--version").stdout.trim()).toBe("0.1.0");
  }, 120_000);
});
