import { describe, expect, it } from "vitest";
import { parseConfigText } from "../src/manager/load-config.ts";
import { overheadConfigYaml } from "./overhead.ts";

describe("overhead: what weir run gets", () => {
  it("writes a config weir accepts: 100 partitions on the given cgroups, API on the port", () => {
    const cgroups = Array.from({ length: 100 }, (_, i) => `weirb-1-${String(i).padStart(3, "0")}`);
    const cfg = parseConfigText(overheadConfigYaml(cgroups, 45678), "overhead.yaml");
    expect(cfg.intervalMs).toBe(100);
    expect(cfg.api?.listen).toBe("127.0.0.1:45678");
    expect(cfg.partitions).toHaveLength(100);
    expect(cfg.partitions[99]).toMatchObject({ name: "p099", cgroup: "weirb-1-099" });
  });
});
