import path from "node:path";
import { describe, expect, it } from "vitest";
import { isWeirError } from "../core/errors.ts";
import { bpfCgroupDir, bpfSource, pinNotes } from "./source-bpf.ts";

const FIX = path.join(import.meta.dirname, "fixtures");

describe("counter source bpf", () => {
  it("defaults to offered = ingress, served = egress, unpinned", () => {
    expect(bpfSource.parseOptions?.(null)).toEqual({
      options: { offered: "ingress", served: "egress", pin: false },
    });
    expect(bpfSource.parseOptions?.({ offered: "egress", served: "ingress", pin: true })).toEqual({
      options: { offered: "egress", served: "ingress", pin: true },
    });
  });

  it("names the option, the rule and the value it refuses", () => {
    expect(bpfSource.parseOptions?.({ offered: "rx", pin: "yes", nope: 1 })).toEqual({
      issues: [
        { path: ["nope"], message: expect.stringContaining("(rule: known-fields)") },
        { path: ["offered"], message: 'must be ingress or egress (rule: bpf-hook): got "rx"' },
        { path: ["pin"], message: 'must be true or false (rule: boolean): got "yes"' },
      ],
    });
  });

  it("tells the operator when pinned counters moved off the partition's old cgroup, or carried no record", () => {
    const dir = "/sys/fs/cgroup/unified/web/new";
    expect(pinNotes("web", dir, { resumed: false, movedFrom: null, unrecorded: false })).toEqual(
      [],
    );
    expect(pinNotes("web", dir, { resumed: true, movedFrom: null, unrecorded: false })).toEqual([]);
    expect(
      pinNotes("web", dir, {
        resumed: true,
        movedFrom: "/sys/fs/cgroup/unified/web/old",
        unrecorded: false,
      }),
    ).toEqual([
      "partition web: its pinned eBPF counters now count /sys/fs/cgroup/unified/web/new; their programs were taken off /sys/fs/cgroup/unified/web/old, the cgroup it had before",
    ]);
    const [unrecorded] = pinNotes("web", dir, { resumed: true, movedFrom: null, unrecorded: true });
    expect(unrecorded).toContain("no record of their cgroup");
    expect(unrecorded).toContain("bpftool cgroup tree");
  });

  it("finds the v2 directory: <cgroupfs>/<path> on v2, <cgroupfs>/unified/<path> on hybrid", () => {
    expect(bpfCgroupDir(path.join(FIX, "v2/cgroup"), "weir/web", "web")).toBe(
      path.join(FIX, "v2/cgroup/weir/web"),
    );
    expect(bpfCgroupDir(path.join(FIX, "hybrid/cgroup"), "/weir//web", "web")).toBe(
      path.join(FIX, "hybrid/cgroup/unified/weir/web"),
    );
  });

  it("without a cgroup2 mount says so, naming the partition and the fix", () => {
    let msg = "";
    try {
      bpfCgroupDir(path.join(FIX, "v1/cgroup"), "weir/web", "web");
    } catch (e) {
      if (isWeirError(e)) msg = `${e.code}: ${e.message}`;
    }
    expect(msg).toMatch(
      /^WEIR_BPF_UNAVAILABLE: partition web: no cgroup2 hierarchy under .*mount -t cgroup2/,
    );
  });
});
