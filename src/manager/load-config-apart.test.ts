import v8 from "node:v8";
import { describe, expect, it } from "vitest";
import { ErrorCodes, isWeirError, type WeirError } from "../core/errors.ts";
import { packageFileUrl } from "../core/package-files.ts";
import { loadConfigFile } from "./load-config.ts";
import { configFromReply } from "./load-config-apart.ts";

const example = packageFileUrl("examples/weir.yaml").pathname;

// loadConfigFileApart itself is tested on the compiled tree (test/build.test.ts): from the
// sources, as here, it reads the file in-process, and a test of that would only compare
// loadConfigFile with itself.
describe("the child's reply", () => {
  it("carries the config unchanged: the validated config survives v8.serialize", () => {
    // the child writes its reply with v8.serialize (the structured clone algorithm)
    const cfg = loadConfigFile(example);
    const copy = v8.deserialize(v8.serialize({ config: cfg })) as { config: typeof cfg };
    expect(copy.config).toStrictEqual(cfg);
    expect(configFromReply(copy)).toStrictEqual(cfg);
  });

  it("turns an error reply back into the WeirError, a failure into an Error", () => {
    const e = (() => {
      try {
        configFromReply({
          error: { code: ErrorCodes.CONFIG_INVALID, message: "x.yaml is invalid" },
        });
      } catch (err) {
        return err;
      }
    })();
    expect(isWeirError(e)).toBe(true);
    expect((e as WeirError).code).toBe(ErrorCodes.CONFIG_INVALID);
    expect((e as WeirError).message).toBe("x.yaml is invalid");
    expect(() => configFromReply({ failure: "TypeError: boom" })).toThrow(/TypeError: boom/);
  });
});
