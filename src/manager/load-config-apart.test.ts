import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import v8 from "node:v8";
import { afterAll, describe, expect, it } from "vitest";
import { ErrorCodes, isWeirError, type WeirError } from "../core/errors.ts";
import { packageFileUrl } from "../core/package-files.ts";
import { loadConfigFile } from "./load-config.ts";
import { configFromReply, loadConfigFileApart } from "./load-config-apart.ts";

const example = packageFileUrl("examples/weir.yaml").pathname;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "weir-apart-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("loadConfigFileApart", () => {
  it("gives what loadConfigFile gives", async () => {
    expect(await loadConfigFileApart(example)).toStrictEqual(loadConfigFile(example));
  });

  it("throws the WeirError loadConfigFile throws", async () => {
    const bad = path.join(dir, "bad.yaml");
    fs.writeFileSync(bad, "intervalMs: 5\npartitions: []\n");
    const expected = (() => {
      try {
        loadConfigFile(bad);
      } catch (err) {
        return err;
      }
    })();
    expect(isWeirError(expected)).toBe(true);
    const got = await loadConfigFileApart(bad).catch((err: unknown) => err);
    expect(isWeirError(got)).toBe(true);
    expect((got as WeirError).code).toBe((expected as WeirError).code);
    expect((got as WeirError).message).toBe((expected as WeirError).message);
  });
});

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
