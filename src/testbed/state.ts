// The testbed's record of what it created. Every resource is written to the record as
// "planned" BEFORE it is created and marked "created" after, so a crash (even SIGKILL)
// at any point leaves a record that names everything that might exist. Tear-down works
// from the record alone. Pure helpers here; file I/O in readState/writeState.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import type { CgroupLayout } from "../cgroup/layout.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { SensorSpec } from "../sensors/types.ts";

export type ResourceKind = "cgroup" | "netns" | "link" | "process" | "file";

export interface ResourceRecord {
  kind: ResourceKind;
  /** cgroup: absolute dir; netns: name; link: host-side name; process: tag; file: path. */
  id: string;
  status: "planned" | "created";
  /** Partition or hog it belongs to; "" for shared things (the prefix's cgroup dirs). */
  owner: string;
  /** process: pid and /proc/<pid>/stat start time (clock ticks since boot) once started. */
  pid?: number;
  startTime?: number;
  /** process: the argv it was started with, and the cgroup dirs it was put into. */
  argv?: string[];
  cgroupDirs?: string[];
}

export interface TestbedPartition {
  name: string;
  /**
   * On the host network (no namespace, no veth): `netns`, `hostIf` and `nsIf` are "", the
   * server listens on 127.0.0.1:`port` (a free port picked at creation), and the partition
   * is counted by eBPF on its cgroup (`packets: bpf`). Absent: a netns + veth partition.
   */
  hostNetwork?: boolean;
  netns: string;
  hostIf: string;
  nsIf: string;
  hostAddr: string;
  nsAddr: string;
  prefixLen: number;
  /** UDP port of the packet server (on nsAddr); its closed-loop TCP server listens on the same number. */
  port: number;
  costRounds: number;
  /** Worker processes of the packet server (absent: 1; see TestbedOptions.serverWorkers). */
  serverWorkers?: number;
  /** cgroup path relative to the cgroup root, e.g. "weir/p1". */
  cgroup: string;
  /** Absolute cgroup dirs (v1: cpu and cpuacct; v2: one). */
  cgroupDirs: string[];
  serverPid: number | null;
  logFile: string;
  /** What a sensor should read for this partition (host veth: offered = tx, served = rx). */
  sensor: SensorSpec;
}

export interface TestbedHog {
  name: string;
  cgroup: string;
  cgroupDirs: string[];
  pid: number | null;
  /** Busy threads. */
  cpus: number;
  logFile: string;
}

export interface TestbedState {
  version: 1;
  prefix: string;
  stateFile: string;
  createdAtEpochMs: number;
  updatedAtEpochMs: number;
  /** Processes started by this testbed exit by themselves at this time (epoch ms). */
  expiresAtEpochMs: number;
  cgroup: CgroupLayout;
  partitions: TestbedPartition[];
  hogs: TestbedHog[];
  resources: ResourceRecord[];
}

export const resourceSchema = z.object({
  kind: z.enum(["cgroup", "netns", "link", "process", "file"]),
  id: z.string().min(1),
  status: z.enum(["planned", "created"]),
  owner: z.string(),
  pid: z.number().int().positive().optional(),
  startTime: z.number().int().nonnegative().optional(),
  argv: z.array(z.string()).optional(),
  cgroupDirs: z.array(z.string()).optional(),
});

/** A recorded `CgroupLayout` (the testbed's and the VM set's state files carry one). */
export const cgroupLayoutSchema = z.union([
  z.object({
    version: z.literal(1),
    root: z.string(),
    cpu: z.string(),
    cpuacct: z.string(),
    unified: z.string().optional(),
  }),
  z.object({ version: z.literal(2), root: z.string() }),
]);

const interfaceSchema = z.object({
  name: z.string(),
  offered: z.enum(["rx", "tx"]),
  served: z.enum(["rx", "tx"]),
});

const stateSchema = z.object({
  version: z.literal(1),
  prefix: z.string(),
  stateFile: z.string(),
  createdAtEpochMs: z.number(),
  updatedAtEpochMs: z.number(),
  expiresAtEpochMs: z.number(),
  cgroup: cgroupLayoutSchema,
  partitions: z.array(
    z.object({
      name: z.string(),
      hostNetwork: z.boolean().optional(),
      netns: z.string(),
      hostIf: z.string(),
      nsIf: z.string(),
      hostAddr: z.string(),
      nsAddr: z.string(),
      prefixLen: z.number(),
      port: z.number(),
      costRounds: z.number(),
      serverWorkers: z.number().optional(),
      cgroup: z.string(),
      cgroupDirs: z.array(z.string()),
      serverPid: z.number().nullable(),
      logFile: z.string(),
      sensor: z.object({
        cgroup: z.string(),
        interfaces: z.array(interfaceSchema),
        pid: z.number().optional(),
        netnsInterfaces: z.array(interfaceSchema).optional(),
        packets: z
          .array(z.object({ name: z.string(), options: z.unknown().optional() }))
          .optional(),
      }),
    }),
  ),
  hogs: z.array(
    z.object({
      name: z.string(),
      cgroup: z.string(),
      cgroupDirs: z.array(z.string()),
      pid: z.number().nullable(),
      cpus: z.number(),
      logFile: z.string(),
    }),
  ),
  resources: z.array(resourceSchema),
});

/** What the record-keeping helpers below need: a testbed's state, or another record (src/vm). */
export interface ResourceLedger {
  stateFile: string;
  updatedAtEpochMs: number;
  resources: ResourceRecord[];
}

export function newState(opts: {
  prefix: string;
  stateFile: string;
  cgroup: CgroupLayout;
  nowMs: number;
  expiresAtEpochMs: number;
}): TestbedState {
  return {
    version: 1,
    prefix: opts.prefix,
    stateFile: opts.stateFile,
    createdAtEpochMs: opts.nowMs,
    updatedAtEpochMs: opts.nowMs,
    expiresAtEpochMs: opts.expiresAtEpochMs,
    cgroup: opts.cgroup,
    partitions: [],
    hogs: [],
    resources: [],
  };
}

export const findResource = (
  state: ResourceLedger,
  kind: ResourceKind,
  id: string,
): ResourceRecord | undefined => state.resources.find((r) => r.kind === kind && r.id === id);

/** Add a resource as planned unless it is already recorded; returns the record. */
export function planResource(
  state: ResourceLedger,
  kind: ResourceKind,
  id: string,
  owner: string,
): ResourceRecord {
  const found = findResource(state, kind, id);
  if (found) return found;
  const rec: ResourceRecord = { kind, id, status: "planned", owner };
  state.resources.push(rec);
  return rec;
}

export function markCreated(
  state: ResourceLedger,
  kind: ResourceKind,
  id: string,
  patch: Partial<Pick<ResourceRecord, "pid" | "startTime" | "argv" | "cgroupDirs">> = {},
): ResourceRecord {
  const rec = findResource(state, kind, id);
  if (!rec) throw new WeirError(ErrorCodes.TESTBED, `internal: ${kind} ${id} was never planned`);
  Object.assign(rec, patch, { status: "created" });
  return rec;
}

export function dropResource(state: ResourceLedger, rec: ResourceRecord): void {
  state.resources = state.resources.filter((r) => r !== rec);
}

const KIND_ORDER: Record<ResourceKind, number> = {
  process: 0,
  link: 1,
  netns: 2,
  cgroup: 3,
  file: 4,
};

/**
 * Tear-down order: processes first (they hold cgroups and namespaces), then host-side
 * veths (deleting one end removes both, synchronously), then namespaces (`ip netns del`
 * is asynchronous, so nothing may depend on it), then cgroup dirs children before
 * parents (reverse of creation), then files.
 */
export function teardownOrder(resources: ResourceRecord[]): ResourceRecord[] {
  return resources
    .map((r, i) => ({ r, i }))
    .sort((a, b) => KIND_ORDER[a.r.kind] - KIND_ORDER[b.r.kind] || b.i - a.i)
    .map((x) => x.r);
}

/**
 * A state record parsed and checked against `schema`; `complaint` says what is wrong in the
 * error ("is not a VM testbed record"). The testbed's and the VM testbed's state files share it.
 */
export function parseRecord<T>(
  text: string,
  file: string,
  schema: z.ZodType<unknown>,
  complaint = "is malformed",
): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new WeirError(
      ErrorCodes.TESTBED,
      `state file ${file} is not JSON: ${(e as Error).message}`,
    );
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const why = r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new WeirError(ErrorCodes.TESTBED, `state file ${file} ${complaint}: ${why}`);
  }
  return r.data as T;
}

/** A state file's text, or null when it does not exist. */
export function readRecordText(file: string): string | null {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new WeirError(
      ErrorCodes.TESTBED,
      `cannot read state file ${file}: ${(e as Error).message}`,
    );
  }
}

export const parseState = (text: string, file: string): TestbedState =>
  parseRecord<TestbedState>(text, file, stateSchema);

/** Read a state file; null when it does not exist. */
export function readState(file: string): TestbedState | null {
  const text = readRecordText(file);
  return text === null ? null : parseState(text, file);
}

/** Write atomically (temp file + rename), so a reader or a crash never sees half a record. */
export function writeState(state: ResourceLedger, nowMs = Date.now()): void {
  state.updatedAtEpochMs = nowMs;
  mkdirSync(dirname(state.stateFile), { recursive: true });
  const tmp = `${state.stateFile}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, state.stateFile);
}

/**
 * One step of setup. If the thing exists: keep it when the record names it (marking a
 * "planned" one created: it was made just before a crash), refuse it when the record
 * does not (someone else's; it is not recorded, so `down` will never touch it).
 * Otherwise: record it as planned, write the record, create it, mark it created.
 * Returns true when it created the thing.
 */
export async function recordThenCreate(
  state: ResourceLedger,
  kind: ResourceKind,
  id: string,
  owner: string,
  exists: () => boolean,
  create: () => Promise<unknown> | unknown,
): Promise<boolean> {
  const rec = findResource(state, kind, id);
  if (exists()) {
    if (!rec) {
      throw new WeirError(
        ErrorCodes.TESTBED,
        `${kind} ${id} exists but this testbed did not create it (not in ${state.stateFile}); use another prefix or remove it`,
      );
    }
    if (rec.status !== "created") {
      markCreated(state, kind, id);
      writeState(state);
    }
    return false;
  }
  planResource(state, kind, id, owner);
  writeState(state);
  await create();
  markCreated(state, kind, id);
  writeState(state);
  return true;
}
