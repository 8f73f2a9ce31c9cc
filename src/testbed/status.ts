// `weir testbed status`: what a testbed's record says against what exists on the host, plus
// anything carrying the testbed's prefix that the record lacks (left by a crash before the
// record was written, or by another tool).
import { type Dirent, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { type CgroupLayout, detectCgroupLayout } from "../cgroup/layout.ts";
import { hierarchies } from "../cgroup/paths.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { TAG_ARG } from "./names.ts";
import { linkExists, listNetns, netnsExists } from "./net.ts";
import { netRootsOf, type TestbedRoots, testbedRoots } from "./options.ts";
import { isAlive, pidsWithArgMatching } from "./procs.ts";
import { type ResourceKind, readState, type TestbedHog, type TestbedPartition } from "./state.ts";

export interface ResourceStatus {
  kind: ResourceKind;
  id: string;
  owner: string;
  /** "planned"/"created" from the record, or "unrecorded" (carries the prefix but is not in the record). */
  recorded: "planned" | "created" | "unrecorded";
  exists: boolean;
  pid?: number;
}

export interface TestbedStatus {
  stateFile: string;
  prefix: string;
  /** The state file exists. */
  recorded: boolean;
  cgroup: CgroupLayout | null;
  resources: ResourceStatus[];
  partitions: TestbedPartition[];
  hogs: TestbedHog[];
  /** Every recorded resource exists (processes alive) and nothing unrecorded carries the prefix. */
  healthy: boolean;
  /** Nothing recorded exists and nothing unrecorded carries the prefix. */
  nothingLeft: boolean;
}

/** What the record says against what exists, plus anything carrying the prefix that the record lacks. */
export function testbedStatus(
  stateFile: string,
  opts: { prefix?: string; roots?: Partial<TestbedRoots> } = {},
): TestbedStatus {
  const roots = testbedRoots(opts.roots);
  const net = netRootsOf(roots);
  const state = readState(stateFile);
  const prefix = state?.prefix ?? opts.prefix;
  if (!prefix)
    throw new WeirError(ErrorCodes.TESTBED, `no state file ${stateFile} and no prefix given`);
  let layout: CgroupLayout | null = state?.cgroup ?? null;
  if (!layout) {
    try {
      layout = detectCgroupLayout(roots.cgroupfs);
    } catch {
      layout = null;
    }
  }
  const resources: ResourceStatus[] = [];
  const recorded = (kind: ResourceKind, id: string) =>
    state?.resources.some((r) => r.kind === kind && r.id === id) ?? false;
  for (const r of state?.resources ?? []) {
    let exists = false;
    switch (r.kind) {
      case "process":
        exists = r.pid !== undefined && isAlive(r.pid, r.startTime, roots.procfs);
        break;
      case "link":
        exists = linkExists(r.id, net);
        break;
      case "netns":
        exists = netnsExists(r.id, net);
        break;
      case "cgroup":
      case "file":
        exists = existsSync(r.id);
        break;
    }
    resources.push({
      kind: r.kind,
      id: r.id,
      owner: r.owner,
      recorded: r.status,
      exists,
      ...(r.pid === undefined ? {} : { pid: r.pid }),
    });
  }
  // Things carrying the prefix that the record does not name.
  const ours = (name: string) =>
    name.startsWith(`${prefix}-`) && !name.slice(prefix.length + 1).includes("-");
  for (const ns of listNetns(net)) {
    if (ours(ns) && !recorded("netns", ns))
      resources.push({ kind: "netns", id: ns, owner: "", recorded: "unrecorded", exists: true });
  }
  for (const ifname of listLinks(roots.sysfs)) {
    if (ours(ifname) && !recorded("link", ifname))
      resources.push({ kind: "link", id: ifname, owner: "", recorded: "unrecorded", exists: true });
  }
  if (layout) {
    for (const h of hierarchies(layout)) {
      const top = join(h, prefix);
      for (const dir of [top, ...subdirs(top)]) {
        if (existsSync(dir) && !recorded("cgroup", dir))
          resources.push({
            kind: "cgroup",
            id: dir,
            owner: "",
            recorded: "unrecorded",
            exists: true,
          });
      }
    }
  }
  const tagPrefix = `${TAG_ARG}${prefix}/`;
  for (const [pid, argv] of pidsWithArgMatching((a) => a.startsWith(tagPrefix), roots.procfs)) {
    const tag = argv.find((a) => a.startsWith(tagPrefix))!.slice(TAG_ARG.length);
    const rec = state?.resources.find((r) => r.kind === "process" && r.id === tag);
    if (rec?.pid === pid) continue;
    resources.push({
      kind: "process",
      id: tag,
      owner: "",
      recorded: "unrecorded",
      exists: true,
      pid,
    });
  }
  const unrecorded = resources.some((r) => r.recorded === "unrecorded");
  return {
    stateFile,
    prefix,
    recorded: state !== null,
    cgroup: layout,
    resources,
    partitions: state?.partitions ?? [],
    hogs: state?.hogs ?? [],
    healthy: state !== null && !unrecorded && resources.every((r) => r.exists),
    nothingLeft: resources.every((r) => !r.exists),
  };
}

function listLinks(sysfs: string): string[] {
  try {
    return readdirSync(join(sysfs, "class/net"));
  } catch {
    return [];
  }
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d: Dirent) => d.isDirectory())
      .map((d: Dirent) => join(dir, d.name));
  } catch {
    return [];
  }
}
