import { describe, expect, it } from "vitest";
import { kernelPaths, kernelRelease, parseKernelDepends } from "./kernel.ts";

describe("the guest kernel package", () => {
  it("is the 6.1.0-*-amd64 package linux-image-amd64 depends on", () => {
    // `apt-cache depends linux-image-amd64` on Debian 12, 2026-12-01.
    const text = "linux-image-amd64\n  Depends: linux-image-6.1.0-57-amd64\n";
    expect(parseKernelDepends(text)).toBe("linux-image-6.1.0-57-amd64");
  });
  it("refuses a metapackage that names another flavour", () => {
    expect(() =>
      parseKernelDepends("linux-image-amd64\n  Depends: linux-image-6.1.0-57-cloud-amd64\n"),
    ).toThrow(/names no linux-image-6.1.0-\*-amd64 package/);
  });
  it("maps a package to its release and unpacked paths", () => {
    expect(kernelPaths("/c", "linux-image-6.1.0-57-amd64")).toEqual({
      packageName: "linux-image-6.1.0-57-amd64",
      release: "6.1.0-57-amd64",
      vmlinuz: "/c/linux-image-6.1.0-57-amd64/boot/vmlinuz-6.1.0-57-amd64",
      modulesDir: "/c/linux-image-6.1.0-57-amd64/lib/modules/6.1.0-57-amd64",
    });
    expect(() => kernelRelease("linux-image-6.1.0-57-cloud-amd64")).toThrow(
      /'kernelPackage' must be linux-image-6.1.0-<n>-amd64: current value is "linux-image-6.1.0-57-cloud-amd64"/,
    );
  });
});
