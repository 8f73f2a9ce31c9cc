import { z } from "zod";
import type { CgroupLayout } from "../cgroup/layout.ts";
import {
  cgroupLayoutSchema,
  parseRecord,
  type ResourceRecord,
  readRecordText,
  resourceSchema,
} from "../testbed/state.ts";

export interface VmRecord {
  name: string;
  /** Partition index: the wire id and slot of its reports. */
  index: number;
  netns: string;
  /** Tap inside `netns`, recorded as the link `<netns>/<tapIf>`. */
  tapIf: string;
  /** The tap's address (in the namespace) and the guest's, a /30 in 198.18.0.0/15. */
  hostAddr: string;
  guestAddr: string;
  prefixLen: number;
  mac: string;
  /** cgroup path relative to the cgroup root; QEMU (and so every vCPU thread) runs in it. */
  cgroup: string;
  cgroupDirs: string[];
  maxCpus: number;
  memMiB: number;
  qmpSocket: string;
  /** The partition's ivshmem region (a /dev/shm file) and its size (a power of two). */
  shmFile: string;
  shmBytes: number;
  /** The guest's serial console (kernel messages, /init, the agent's log lines). */
  serialLog: string;
  /** QEMU's own stdout/stderr. */
  qemuLog: string;
  /** Files the guest's /init copies in: `<guestFiles>.run.sh` and `<guestFiles>.key`. */
  guestFiles: string;
  /** The partition's report key, hex (also in `<guestFiles>.key`). */
  keyHex: string;
  qemuPid: number | null;
}

export interface VmState {
  version: 1;
  kind: "vms";
  prefix: string;
  stateFile: string;
  createdAtEpochMs: number;
  updatedAtEpochMs: number;
  /** Guests power themselves off at this time (epoch ms). */
  expiresAtEpochMs: number;
  cgroup: CgroupLayout;
  vms: VmRecord[];
  resources: ResourceRecord[];
}

const vmSchema = z.object({
  name: z.string(),
  index: z.number().int().nonnegative(),
  netns: z.string(),
  tapIf: z.string(),
  hostAddr: z.string(),
  guestAddr: z.string(),
  prefixLen: z.number(),
  mac: z.string(),
  cgroup: z.string(),
  cgroupDirs: z.array(z.string()),
  maxCpus: z.number().int().positive(),
  memMiB: z.number().int().positive(),
  qmpSocket: z.string(),
  shmFile: z.string(),
  shmBytes: z.number().int().positive(),
  serialLog: z.string(),
  qemuLog: z.string(),
  guestFiles: z.string(),
  keyHex: z.string(),
  qemuPid: z.number().nullable(),
});

const stateSchema = z.object({
  version: z.literal(1),
  kind: z.literal("vms"),
  prefix: z.string(),
  stateFile: z.string(),
  createdAtEpochMs: z.number(),
  updatedAtEpochMs: z.number(),
  expiresAtEpochMs: z.number(),
  cgroup: cgroupLayoutSchema,
  vms: z.array(vmSchema),
  resources: z.array(resourceSchema),
});

export const parseVmState = (text: string, file: string): VmState =>
  parseRecord<VmState>(text, file, stateSchema, "is not a VM testbed record");

/** Read a VM state file; null when it does not exist. */
export function readVmState(file: string): VmState | null {
  const text = readRecordText(file);
  return text === null ? null : parseVmState(text, file);
}

/** A tap is recorded as a link inside its namespace: `<netns>/<ifname>`. */
export const tapLinkId = (netns: string, ifname: string): string => `${netns}/${ifname}`;
export function splitLinkId(id: string): { netns: string | null; ifname: string } {
  const i = id.indexOf("/");
  return i < 0 ? { netns: null, ifname: id } : { netns: id.slice(0, i), ifname: id.slice(i + 1) };
}

/** Default state file of a VM testbed. */
export const defaultVmStateFile = (prefix: string, runDir = "/run/weir"): string =>
  `${runDir}/vms-${prefix}.json`;
