// The examples a newcomer copies: the systemd unit runs the package's bin on the example's
// config path, reloads with SIGHUP, keeps the example's state file directory across restarts
// and is accepted by systemd (`systemd-analyze verify`, where systemd is installed).
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const ROOT = path.resolve(import.meta.dirname, "..");
const unit = fs.readFileSync(path.join(ROOT, "examples/weir.service"), "utf8");
const directive = (key: string): string | undefined =>
  unit
    .split("\n")
    .find((l) => l.startsWith(`${key}=`))
    ?.slice(key.length + 1);

const hasSystemdAnalyze = (() => {
  try {
    execFileSync("systemd-analyze", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe("examples/weir.service", () => {
  it("runs weir's bin on a config, reloads with SIGHUP, stops with SIGTERM", () => {
    expect(directive("ExecStart")).toMatch(
      /^\/opt\/weir\/bin\/weir\.js run -c \/etc\/weir\/weir\.yaml/,
    );
    expect(directive("ExecReload")).toBe("/bin/kill -HUP $MAINPID");
    expect(directive("KillSignal")).toBe("SIGTERM");
    // a config mistake exits 2 (README, Configuration): restarting would not mend it
    expect(directive("RestartPreventExitStatus")).toBe("2");
    // systemd counts a death by SIGHUP as clean: one before weir takes the signal must restart
    expect(directive("Restart")).toBe("on-failure");
    expect(directive("RestartForceExitStatus")).toBe("SIGHUP");
  });

  it("keeps the example config's state file directory across restarts", () => {
    const cfg = parse(fs.readFileSync(path.join(ROOT, "examples/weir.yaml"), "utf8")) as {
      stateFile: string;
    };
    expect(path.dirname(cfg.stateFile)).toBe(`/run/${directive("RuntimeDirectory")}`);
    expect(directive("RuntimeDirectoryPreserve")).toBe("yes");
  });

  it.skipIf(!hasSystemdAnalyze)("is accepted by systemd-analyze verify", () => {
    // the unit as installed, its ExecStart pointing at this checkout's bin
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "weir-unit-"));
    try {
      const file = path.join(dir, "weir.service");
      fs.writeFileSync(file, unit.replace("/opt/weir/bin/weir.js", path.join(ROOT, "bin/weir.js")));
      // it exits 0 on a key it cannot parse, and says so on stderr: nothing may be said
      const r = spawnSync("systemd-analyze", ["verify", file], { encoding: "utf8" });
      expect(`${r.stdout}${r.stderr}`).toBe("");
      expect(r.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
