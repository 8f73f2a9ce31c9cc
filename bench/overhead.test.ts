import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { parseConfigText } from "../src/manager/load-config.ts";
import type { CpuProfile } from "./cpu-profile.ts";
import { AGENT_KEY_HEX, overheadConfigYaml, toSourcePositions } from "./overhead.ts";

describe("overhead: what weir run gets", () => {
  it("writes a config weir accepts: 100 partitions on the given cgroups, API on the port", () => {
    const cgroups = Array.from({ length: 100 }, (_, i) => `weirb-1-${String(i).padStart(3, "0")}`);
    const cfg = parseConfigText(overheadConfigYaml(cgroups, 45678), "overhead.yaml");
    expect(cfg.intervalMs).toBe(100);
    expect(cfg.api?.listen).toBe("127.0.0.1:45678");
    expect(cfg.partitions).toHaveLength(100);
    expect(cfg.partitions[99]).toMatchObject({ name: "p099", cgroup: "weirb-1-099" });
    expect(cfg.transport).toBeUndefined();
    expect(cfg.partitions.every((p) => p.source === "host")).toBe(true);
  });

  it("with a UDP port, feeds every partition from its agent over UDP there, one key", () => {
    const cgroups = Array.from({ length: 100 }, (_, i) => `weirb-1-${String(i).padStart(3, "0")}`);
    const cfg = parseConfigText(overheadConfigYaml(cgroups, 45678, 45679), "agents.yaml");
    expect(cfg.transport?.udp?.listen).toBe("127.0.0.1:45679");
    expect(cfg.partitions).toHaveLength(100);
    expect(cfg.partitions.every((p) => p.source === "agent")).toBe(true);
    expect(cfg.partitions[42]!.agent).toEqual({ key: AGENT_KEY_HEX });
  });
});

describe("overhead: the profile's frames", () => {
  it("names a compiled frame by its .ts file and line, and leaves other frames alone", () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `weirt-${process.pid}-prof-`));
    try {
      const source =
        "// one\n// two\nexport function work(n: number): number {\n  return n * 2;\n}\n";
      const out = ts.transpileModule(source, {
        fileName: "work.ts",
        compilerOptions: { module: ts.ModuleKind.ESNext, sourceMap: true },
      });
      const map = JSON.parse(out.sourceMapText!) as { sources: string[] };
      map.sources = ["../src/work.ts"];
      fs.mkdirSync(path.join(tmp, "dist"));
      const js = path.join(tmp, "dist", "work.js");
      fs.writeFileSync(js, out.outputText);
      fs.writeFileSync(`${js}.map`, JSON.stringify(map));
      const jsLine = out.outputText.split("\n").findIndex((l) => l.includes("function work"));
      expect(jsLine).toBeGreaterThanOrEqual(0);
      const frame = (url: string, lineNumber: number) => ({
        functionName: "work",
        url,
        lineNumber,
        columnNumber: 0,
      });
      const profile: CpuProfile = {
        nodes: [
          { id: 1, callFrame: frame(pathToFileURL(js).href, jsLine) },
          { id: 2, callFrame: frame("node:internal/timers", 10) },
          { id: 3, callFrame: frame("", -1) },
        ],
        startTime: 0,
        endTime: 1,
        samples: [],
        timeDeltas: [],
      };
      toSourcePositions(profile, path.join(tmp, "dist"));
      expect(profile.nodes[0]!.callFrame.url).toBe(
        pathToFileURL(path.join(tmp, "src", "work.ts")).href,
      );
      expect(profile.nodes[0]!.callFrame.lineNumber).toBe(2); // 0-based: the .ts's third line
      expect(profile.nodes[1]!.callFrame).toEqual(frame("node:internal/timers", 10));
      expect(profile.nodes[2]!.callFrame).toEqual(frame("", -1));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
