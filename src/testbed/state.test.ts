import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  findResource,
  markCreated,
  newState,
  parseState,
  planResource,
  readState,
  recordThenCreate,
  type TestbedState,
  teardownOrder,
  writeState,
} from "./state.ts";

let dir: string;
let state: TestbedState;
const onDisk = () => JSON.parse(readFileSync(state.stateFile, "utf8")) as TestbedState;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "weir-state-"));
  state = newState({
    prefix: "weirt",
    stateFile: join(dir, "run", "testbed-weirt.json"),
    cgroup: {
      version: 1,
      root: "/sys/fs/cgroup",
      cpu: "/sys/fs/cgroup/cpu",
      cpuacct: "/sys/fs/cgroup/cpuacct",
    },
    nowMs: 1000,
    expiresAtEpochMs: 61_000,
  });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("the record", () => {
  it("plans once per kind and id, then marks created with details", () => {
    const a = planResource(state, "netns", "weirt-p1", "p1");
    expect(planResource(state, "netns", "weirt-p1", "p1")).toBe(a);
    expect(state.resources).toHaveLength(1);
    planResource(state, "process", "weirt/p1", "p1");
    markCreated(state, "process", "weirt/p1", { pid: 42, startTime: 7 });
    expect(findResource(state, "process", "weirt/p1")).toEqual({
      kind: "process",
      id: "weirt/p1",
      status: "created",
      owner: "p1",
      pid: 42,
      startTime: 7,
    });
    expect(() => markCreated(state, "link", "nope")).toThrow(/never planned/);
  });

  it("tears down processes, links, namespaces, cgroups (children first), files", () => {
    for (const [kind, id] of [
      ["cgroup", "/cg/weirt"],
      ["netns", "ns1"],
      ["link", "if1"],
      ["cgroup", "/cg/weirt/p1"],
      ["file", "/run/x.log"],
      ["process", "weirt/p1"],
    ] as const) {
      planResource(state, kind, id, "p1");
    }
    expect(teardownOrder(state.resources).map((r) => r.id)).toEqual([
      "weirt/p1",
      "if1",
      "ns1",
      "/cg/weirt/p1",
      "/cg/weirt",
      "/run/x.log",
    ]);
  });

  it("is written atomically and read back exactly; a missing file reads as null", () => {
    expect(readState(state.stateFile)).toBeNull();
    planResource(state, "link", "if1", "p1");
    writeState(state, 2000);
    const back = readState(state.stateFile);
    expect(back).toEqual(state);
    expect(back?.updatedAtEpochMs).toBe(2000);
    expect(existsSync(`${state.stateFile}.${process.pid}.tmp`)).toBe(false);
  });

  it("rejects a malformed state file with the field that is wrong", () => {
    expect(() => parseState("{", "f.json")).toThrow(/f.json is not JSON/);
    const bad = {
      ...state,
      resources: [{ kind: "volcano", id: "x", status: "created", owner: "" }],
    };
    expect(() => parseState(JSON.stringify(bad), "f.json")).toThrow(/malformed: resources.0.kind/);
    writeFileSync(join(dir, "empty.json"), "");
    expect(() => readState(join(dir, "empty.json"))).toThrow(/not JSON/);
  });
});

describe("recordThenCreate", () => {
  it("writes the record BEFORE creating, so a crash during creation leaves it recorded", async () => {
    let seenOnDiskDuringCreate: unknown;
    const created = await recordThenCreate(
      state,
      "netns",
      "weirt-p1",
      "p1",
      () => false,
      () => {
        seenOnDiskDuringCreate = onDisk().resources.find((r) => r.id === "weirt-p1");
      },
    );
    expect(created).toBe(true);
    expect(seenOnDiskDuringCreate).toEqual({
      kind: "netns",
      id: "weirt-p1",
      status: "planned",
      owner: "p1",
    });
    expect(onDisk().resources[0]?.status).toBe("created");
  });

  it("a failed creation stays recorded as planned (down will look for it)", async () => {
    await expect(
      recordThenCreate(
        state,
        "link",
        "if1",
        "p1",
        () => false,
        () => {
          throw new Error("ip failed");
        },
      ),
    ).rejects.toThrow("ip failed");
    expect(onDisk().resources).toEqual([
      { kind: "link", id: "if1", status: "planned", owner: "p1" },
    ]);
  });

  it("keeps what exists and is recorded; a planned one that exists was created before a crash", async () => {
    planResource(state, "cgroup", "/cg/weirt", "");
    let calls = 0;
    const created = await recordThenCreate(
      state,
      "cgroup",
      "/cg/weirt",
      "",
      () => true,
      () => calls++,
    );
    expect([created, calls]).toEqual([false, 0]);
    expect(findResource(state, "cgroup", "/cg/weirt")?.status).toBe("created");
  });

  it("refuses something that exists but is not recorded, and does not record it", async () => {
    await expect(
      recordThenCreate(
        state,
        "netns",
        "someone-else",
        "p1",
        () => true,
        () => {},
      ),
    ).rejects.toThrow(/netns someone-else exists but this testbed did not create it/);
    expect(findResource(state, "netns", "someone-else")).toBeUndefined();
  });
});
