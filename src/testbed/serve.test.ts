import { describe, expect, it } from "vitest";
import { parseServeArgv } from "./serve.ts";

describe("parseServeArgv", () => {
  it("TCP on the UDP port's number by default, another port, or off", () => {
    expect(parseServeArgv(["--port", "9000"])).toEqual({
      port: 9000,
      costRounds: 600,
      maxLifetimeMs: 3_600_000,
    });
    expect(parseServeArgv(["--port", "9000", "--tcp-port", "9100"]).tcpPort).toBe(9100);
    expect(parseServeArgv(["--port", "9000", "--workers", "2"]).workers).toBe(2);
    expect(parseServeArgv(["--port", "9000", "--tcp-port", "off"]).tcpPort).toBeNull();
    expect(() => parseServeArgv(["--port", "9000", "--tcp-port", "x"])).toThrow(
      "'tcp-port' must be an integer >= 0: current value is x",
    );
  });
});
