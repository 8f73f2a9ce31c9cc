// cpu-profile-summary's grouping of a function by where it lives.
import { describe, expect, it } from "vitest";
import { placeOf } from "./cpu-profile-summary.ts";

describe("placeOf", () => {
  it("groups V8's pseudo-frames, node's modules, weir's folders and packages", () => {
    expect(placeOf("(garbage collector)")).toBe("(garbage collector)");
    expect(placeOf("(program)")).toBe("(program)");
    expect(placeOf("listOnTimeout timers:512")).toBe("node");
    expect(placeOf("runCycle src/manager/manager.ts:120")).toBe("src/manager");
    expect(placeOf("read src/sensors/partition.ts:201")).toBe("src/sensors");
    expect(placeOf("main bench/overhead.ts:3")).toBe("bench/");
    expect(placeOf("observe node_modules/prom-client/lib/histogram.js:80")).toBe("prom-client");
    expect(placeOf("x node_modules/@hono/node-server/dist/index.js:1")).toBe("@hono/node-server");
    expect(placeOf("readSync")).toBe("native");
  });
});
