// `weir load`'s argument checks, through commander: each is refused before any packet is sent.
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { isWeirError } from "../../core/errors.ts";
import { register } from "./load.ts";

async function loadError(...args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  register(program);
  try {
    await program.parseAsync(["node", "weir", "load", ...args]);
  } catch (e) {
    if (isWeirError(e)) return `${e.code}: ${e.message}`;
    throw e;
  }
  throw new Error("expected an error");
}

describe("weir load arguments", () => {
  // Before: node's RangeError (port) and ENOENT (trace file) with their stacks, exit 1; and a
  // --schedule-for naming no target was ignored, the target loaded at --schedule instead.
  it("a target's port must be 1-65535", async () => {
    expect(await loadError("--target", "a=127.0.0.1:99999")).toBe(
      `WEIR_CONFIG_INVALID: 'target' must look like name=addr:port (port 1-65535): current value is "a=127.0.0.1:99999"`,
    );
    expect(await loadError("--target", "a=127.0.0.1:0")).toContain("(port 1-65535)");
  });

  it("a trace file that cannot be read is named", async () => {
    expect(
      await loadError("--target", "a=127.0.0.1:9", "--schedule", "trace:/nonexistent/rv.csv"),
    ).toBe(
      "WEIR_CONFIG_NOT_FOUND: 'schedule' trace file /nonexistent/rv.csv cannot be read: ENOENT",
    );
  });

  it("--tick must be from 1ms to 100ms", async () => {
    // before: 0 was taken (the timers ran every 1 ms), and a tick above 100 ms sent less than
    // the schedule (1000 pps at --tick 200ms: 500 sent in 1 s)
    for (const tick of ["0", "0ms", "0.5ms", "101ms", "1s"])
      expect(
        await loadError(
          ...["--target", "a=127.0.0.1:9", "--duration", "100ms", "--timeout", "100ms", "--quiet"],
          ...["--tick", tick],
        ),
      ).toBe(
        `WEIR_CONFIG_INVALID: 'tick' must be from 1ms to 100ms: current value is ${JSON.stringify(tick)}`,
      );
  });

  it("--schedule-for must name a target", async () => {
    expect(await loadError("--target", "a=127.0.0.1:9", "--schedule-for", "b=100")).toBe(
      `WEIR_CONFIG_INVALID: 'schedule-for' must name a target (a): current value is "b"`,
    );
  });
});
