import { describe, expect, it } from "vitest";
import { type OracleView, oraclePolicy } from "./oracle.ts";
import { input, spec } from "./test-helpers.ts";

const view = (rates: Record<string, number>, costNs = 250_000): OracleView => ({
  intervalMs: 100,
  peakOfferedPacketsPerSec: (id) => rates[id] ?? 0,
  costNsPerPacket: () => costNs,
});

describe("oracle", () => {
  it("gives each network partition its known need plus headroom, and the rest to batch", () => {
    // 250 µs per packet = 4,000 packets per CPU-second.
    const p = oraclePolicy(view({ web: 2000, api: 400 }));
    const out = p.step(
      input(0, [spec("web"), spec("api"), spec("hog", "batch")], [], 1900),
      p.initialState(),
    );
    // web: 2,000 / 4,000 = 0.5 core x 1.2 headroom = 600m; api: 0.1 x 1.2 = 120m;
    // hog: 1,900 - 720 = 1,180m.
    expect(out.directives.map((d) => [d.partition, d.cpuMillis])).toEqual([
      ["web", 600],
      ["api", 120],
      ["hog", 1180],
    ]);
    // Hard caps: cap = entitlement, weight in proportion (600m -> 60).
    expect(out.directives[0]).toMatchObject({ capCpuMillis: 600, capReason: "capped", weight: 60 });
  });

  it("shares by weighted max-min when the needs do not fit", () => {
    const p = oraclePolicy(view({ web: 8000, api: 8000, db: 400 }), { headroomFraction: 0 });
    const specs = [
      spec("web"),
      spec("api", "network", { weight: 300 }),
      spec("db"),
      spec("hog", "batch"),
    ];
    const out = p.step(input(0, specs, [], 2000), p.initialState());
    // needs: web 2,000m, api 2,000m, db 100m. db fits (level 2,000/500*100 = 400 >= 100);
    // 1,900m left for web:api = 1:3 -> 475m and 1,425m; nothing for the hog.
    expect(out.directives.map((d) => d.cpuMillis)).toEqual([475, 1425, 100, 0]);
  });
});
