import { describe, expect, it } from "vitest";
import {
  MODULE_EXT,
  PACKAGE_ROOT_URL,
  packageFileUrl,
  RUNS_COMPILED,
  siblingModuleUrl,
} from "./package-files.ts";

// Run from the sources, as vitest runs them. The compiled side (dist/) is checked by
// test/build.test.ts, which builds and runs the bin.
describe("package files, from the sources", () => {
  it("knows it runs from the TypeScript sources", () => {
    expect(RUNS_COMPILED).toBe(false);
    expect(MODULE_EXT).toBe(".ts");
  });

  it("puts the package root two folders above src/core", () => {
    // This test file is <root>/src/core/package-files.test.ts.
    expect(new URL("src/core/package-files.test.ts", PACKAGE_ROOT_URL).href).toBe(import.meta.url);
    expect(packageFileUrl("dashboard/index.html").href).toBe(
      new URL("../../dashboard/index.html", import.meta.url).href,
    );
  });

  it("names a sibling module with the extension that runs", () => {
    expect(siblingModuleUrl("bounds", import.meta.url).href).toBe(
      new URL("./bounds.ts", import.meta.url).href,
    );
  });
});
