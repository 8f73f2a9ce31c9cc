import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { register as registerDemo } from "./commands/demo.ts";
import { register as registerTestbed } from "./commands/testbed.ts";
import { port, positive } from "./options.ts";

describe("option parsers", () => {
  it("positive: a finite number above 0, else a WeirError naming the option and the value", () => {
    expect(positive("duration")("5")).toBe(5);
    for (const bad of ["-3", "0", "abc", "", "Infinity"])
      expect(() => positive("duration")(bad)).toThrow(
        `--duration must be a positive number: got "${bad}"`,
      );
  });

  it("port: an integer from 0 to 65535", () => {
    expect(port("port")("0")).toBe(0);
    expect(port("port")("65535")).toBe(65_535);
    for (const bad of ["65536", "99999", "-1", "80.5", "abc", ""])
      expect(() => port("port")(bad)).toThrow(
        `--port must be a port, an integer from 0 to 65535: got "${bad}"`,
      );
  });

  // Before: `weir demo --port 99999` built the whole testbed (namespaces, veths, cgroups,
  // servers), tore it down and printed node's RangeError with its stack (exit 1); `--port abc`
  // did the same and then blamed "api.listen ... 127.0.0.1:NaN". Now the parse refuses them.
  it("weir demo --port and weir testbed serve --port are refused before anything runs", async () => {
    const program = () => {
      const p = new Command().exitOverride();
      registerDemo(p);
      registerTestbed(p);
      return p;
    };
    await expect(program().parseAsync(["node", "weir", "demo", "--port", "99999"])).rejects.toThrow(
      '--port must be a port, an integer from 0 to 65535: got "99999"',
    );
    await expect(program().parseAsync(["node", "weir", "demo", "--port", "abc"])).rejects.toThrow(
      '--port must be a port, an integer from 0 to 65535: got "abc"',
    );
    await expect(
      program().parseAsync(["node", "weir", "testbed", "serve", "--port", "70000"]),
    ).rejects.toThrow('--port must be a port, an integer from 0 to 65535: got "70000"');
  });
});
