// Names of everything a testbed creates on the host. Every name carries the testbed's
// prefix, so several testbeds (parallel tests, a demo) never touch each other's things.
import { createHash } from "node:crypto";
import { ErrorCodes, WeirError } from "../core/errors.ts";

/** Linux interface names are at most 15 bytes (IFNAMSIZ 16 with the NUL). */
export const MAX_IFNAME_BYTES = 15;

const PREFIX_RE = /^[a-z][a-z0-9-]{0,31}$/;
/** No dash in partition names: then `<prefix>-<name>` can never be read two ways. */
const NAME_RE = /^[a-z][a-z0-9]{0,15}$/;

export function validatePrefix(prefix: string): string {
  if (!PREFIX_RE.test(prefix) || prefix.endsWith("-")) {
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `'prefix' must be 1-32 of [a-z0-9-], start with a letter and not end with '-': current value is ${JSON.stringify(prefix)}`,
    );
  }
  return prefix;
}

export function validatePartitionName(name: string): string {
  if (!NAME_RE.test(name)) {
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `partition 'name' must be 1-16 of [a-z0-9], starting with a letter: current value is ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/** Network namespace of a partition: a file under /run/netns. */
export const netnsName = (prefix: string, name: string): string => `${prefix}-${name}`;

/**
 * Host-side veth name: `<prefix>-<name>` when it fits in 15 bytes, otherwise "wv" plus
 * 12 hex digits of SHA-256(prefix/name) (deterministic, so a re-run finds it again).
 */
export function hostIfName(prefix: string, name: string): string {
  const readable = `${prefix}-${name}`;
  if (Buffer.byteLength(readable) <= MAX_IFNAME_BYTES) return readable;
  const h = createHash("sha256").update(`${prefix}/${name}`).digest("hex").slice(0, 12);
  return `wv${h}`;
}

/** Name of the veth end inside the namespace (namespaces are private, so it can be fixed). */
export const NS_IFNAME = "eth0";

/** cgroup path of a partition relative to the cgroup root (what SensorSpec.cgroup wants). */
export const cgroupRel = (prefix: string, name: string): string => `${prefix}/${name}`;

/** The tag every process a testbed starts carries as one argv element. */
export const processTag = (prefix: string, name: string): string => `${prefix}/${name}`;
export const TAG_ARG = "--weir-tag=";
export const tagArg = (tag: string): string => `${TAG_ARG}${tag}`;

/** Default state file of a testbed. */
export const defaultStateFile = (prefix: string, runDir = "/run/weir"): string =>
  `${runDir}/testbed-${prefix}.json`;

/** Default partition names p1..pN and hog names hog1..hogN. */
export const defaultPartitionNames = (count: number): string[] =>
  Array.from({ length: count }, (_, i) => `p${i + 1}`);
export const defaultHogNames = (count: number): string[] =>
  Array.from({ length: count }, (_, i) => `hog${i + 1}`);
