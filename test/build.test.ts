// The build (npm run build): the compiled JavaScript runs without a TypeScript loader and finds
// the files that are not compiled, and bin/weir.js tells a current dist/ from a stale one. It
// compiles into a scratch folder one level under the package root (as dist/ is), so the
// working tree's dist/ is left alone.
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "..");
const OUT = path.join(ROOT, `.build-test-${process.pid}`);
const TSC = createRequire(import.meta.url).resolve("typescript/bin/tsc");

interface DistStatus {
  current: boolean;
  reason?: string;
}
const loadDistStatus = async () =>
  (await import(pathToFileURL(path.join(ROOT, "scripts", "dist-status.js")).href)) as {
    distStatus: (root: string) => DistStatus;
    STAMP_FILE: string;
  };

describe("compiled JavaScript", () => {
  beforeAll(() => {
    execFileSync(process.execPath, [TSC, "-p", "tsconfig.build.json", "--outDir", OUT], {
      cwd: ROOT,
      stdio: "pipe",
    });
  }, 180_000);
  afterAll(() => fs.rmSync(OUT, { recursive: true, force: true }));

  it("rewrites the .ts imports, static and dynamic, and writes source maps", () => {
    const run = fs.readFileSync(path.join(OUT, "src/cli/commands/run.js"), "utf8");
    expect(run).toContain('await import("../../service/run.js")');
    expect(run).not.toMatch(/from "[^"]+\.ts"|import\("[^"]+\.ts"\)/);
    expect(fs.existsSync(path.join(OUT, "src/cli/commands/run.js.map"))).toBe(true);
    expect(fs.existsSync(path.join(OUT, "bench/report.js"))).toBe(true);
    expect(fs.existsSync(path.join(OUT, "bench/report-run.js"))).toBe(true);
    expect(fs.existsSync(path.join(OUT, "src/core/bounds.test.js"))).toBe(false);
  });

  it("runs the CLI with plain node", () => {
    const out = execFileSync(
      process.execPath,
      [path.join(OUT, "src/cli/main.js"), "validate", "-c", "examples/weir.yaml"],
      { cwd: ROOT, encoding: "utf8" },
    );
    expect(out).toContain("examples/weir.yaml: valid.");
  });

  it("reads the config in a child process: the same config and the same errors", async () => {
    const apart = await import(
      pathToFileURL(path.join(OUT, "src/manager/load-config-apart.js")).href
    );
    const load = await import(pathToFileURL(path.join(OUT, "src/manager/load-config.js")).href);
    const example = path.join(ROOT, "examples/weir.yaml");
    expect(await apart.loadConfigFileApart(example)).toStrictEqual(load.loadConfigFile(example));
    const missing = path.join(OUT, "no-such-config.yaml");
    const err = await apart.loadConfigFileApart(missing).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "WeirError", code: "WEIR_CONFIG_NOT_FOUND" });
    // and the compiled CLI exits as before on a config it refuses
    const r = spawnSync(
      process.execPath,
      [path.join(OUT, "src/cli/main.js"), "run", "-c", missing],
      {
        cwd: ROOT,
        encoding: "utf8",
      },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      `weir: WEIR_CONFIG_NOT_FOUND: cannot read config file ${missing}: no such file\n`,
    );
  }, 60_000);

  it("finds dashboard/ and the package root from the compiled tree", async () => {
    const files = await import(pathToFileURL(path.join(OUT, "src/core/package-files.js")).href);
    expect(files.RUNS_COMPILED).toBe(true);
    expect(files.MODULE_EXT).toBe(".js");
    expect(files.PACKAGE_ROOT_URL.href).toBe(pathToFileURL(`${ROOT}/`).href);
    const app = await import(pathToFileURL(path.join(OUT, "src/api/app.js")).href);
    expect(app.defaultDashboardDir).toBe(path.join(ROOT, "dashboard"));
    const report = await import(pathToFileURL(path.join(OUT, "bench/report-run.js")).href);
    const names = (await report.discoverBenches()).map((b: { file: string }) => b.file);
    expect(names).toContain("overhead.js");
  }, 60_000);

  it("names the .ts line in a stack trace through the lazy source maps the bin installs", () => {
    const script = [
      `const { installLazySourceMaps } = await import(${JSON.stringify(pathToFileURL(path.join(OUT, "src/service/source-maps.js")).href)});`,
      `installLazySourceMaps(${JSON.stringify(OUT)});`,
      `const { normalizeCgroupPath } = await import(${JSON.stringify(pathToFileURL(path.join(OUT, "src/cgroup/layout.js")).href)});`,
      'try { normalizeCgroupPath("a/../b"); } catch (e) { console.log(e.stack); }',
    ].join("\n");
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
    });
    expect(out).toMatch(/at normalizeCgroupPath \(\S*\/src\/cgroup\/layout\.ts:\d+:\d+\)/);
    expect(out).not.toContain("layout.js");
  });

  it("the compiled bin: a stack trace names the .ts file and line, source maps not loaded at start", () => {
    // A package root holding the bin, its dist-status check and dist/ (the scratch build,
    // stamped as current), so the bin runs the compiled code. A module loaded before the bin
    // prints a stack when the process exits: `weir validate` of a missing file exits from
    // src/cli/main.ts's `process.exit(2)`, so that frame is in it.
    const pkg = `${OUT}-bin`;
    fs.mkdirSync(path.join(pkg, "bin"), { recursive: true });
    fs.mkdirSync(path.join(pkg, "scripts"), { recursive: true });
    try {
      fs.copyFileSync(path.join(ROOT, "bin/weir.js"), path.join(pkg, "bin/weir.js"));
      for (const f of ["dist-status.js"])
        fs.copyFileSync(path.join(ROOT, "scripts", f), path.join(pkg, "scripts", f));
      fs.symlinkSync(OUT, path.join(pkg, "dist"));
      fs.writeFileSync(path.join(OUT, "build.json"), JSON.stringify({ startedAtMs: Date.now() }));
      const probe =
        'process.on("exit", () => process.stderr.write("maps on: " + process.sourceMapsEnabled + "\\n" + new Error("probe").stack + "\\n"));';
      const r = spawnSync(
        process.execPath,
        [
          "--import",
          `data:text/javascript,${encodeURIComponent(probe)}`,
          path.join(pkg, "bin/weir.js"),
          "validate",
          "-c",
          path.join(pkg, "missing.yaml"),
        ],
        { encoding: "utf8" },
      );
      expect(r.status).toBe(2);
      expect(r.stderr).not.toContain("running the TypeScript sources");
      expect(r.stderr).toContain("maps on: false");
      const exitLine =
        fs
          .readFileSync(path.join(ROOT, "src/cli/main.ts"), "utf8")
          .split("\n")
          .findIndex((l) => l.includes("process.exit(2)")) + 1;
      expect(exitLine).toBeGreaterThan(0);
      expect(r.stderr).toContain(`${path.join(ROOT, "src/cli/main.ts")}:${exitLine}:`);
      expect(r.stderr).not.toMatch(/main\.js:\d+/);
    } finally {
      fs.rmSync(pkg, { recursive: true, force: true });
    }
  });
});

describe("bin/weir.js: is dist/ current?", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `weirt-${process.pid}-dist-`));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const setTime = (p: string, ms: number) => fs.utimesSync(p, ms / 1000, ms / 1000);

  it("is current only when built after every source, and says why not", async () => {
    const { distStatus, STAMP_FILE } = await loadDistStatus();
    fs.mkdirSync(path.join(tmp, "src/core"), { recursive: true });
    fs.mkdirSync(path.join(tmp, "src/core/fixtures"), { recursive: true });
    const source = path.join(tmp, "src/core/a.ts");
    fs.writeFileSync(source, "export {};\n");
    expect(distStatus(tmp)).toEqual({ current: false, reason: "dist/ is not built" });

    const t = Date.now() - 60_000;
    for (const p of ["src", "src/core", "src/core/fixtures", "src/core/a.ts"])
      setTime(path.join(tmp, p), t);
    fs.mkdirSync(path.join(tmp, "dist"));
    fs.writeFileSync(path.join(tmp, STAMP_FILE), JSON.stringify({ startedAtMs: t + 1000 }));
    expect(distStatus(tmp)).toEqual({ current: true });

    // Tests and fixtures are not compiled: changing them leaves dist/ current.
    fs.writeFileSync(path.join(tmp, "src/core/a.test.ts"), "");
    fs.writeFileSync(path.join(tmp, "src/core/fixtures/x"), "");
    setTime(path.join(tmp, "src/core"), t); // the new test file changed its folder's time
    expect(distStatus(tmp)).toEqual({ current: true });

    setTime(source, t + 2000);
    expect(distStatus(tmp)).toEqual({
      current: false,
      reason: "dist/ is older than src/core/a.ts",
    });

    // A removed (or renamed) source shows in its folder's time.
    setTime(source, t);
    fs.rmSync(source);
    expect(distStatus(tmp).current).toBe(false);
  });
});
