// The network side of a partition through iproute2's `ip` only: namespaces, veth pairs,
// addresses. IPv6 is turned off on both ends so neighbour discovery stays out of the
// packet counters.
import { execFile } from "node:child_process";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { type AssignedAddress, parseIpAddrShow } from "./addresses.ts";

const run = promisify(execFile);

export interface NetRoots {
  /** Where `ip netns` keeps namespaces: "/run/netns". */
  netnsDir: string;
  /** "/sys". */
  sysfs: string;
  /** "/proc". */
  procfs: string;
}

export const defaultNetRoots: NetRoots = { netnsDir: "/run/netns", sysfs: "/sys", procfs: "/proc" };

/** Run `ip` with arguments; a failure becomes WeirError(TESTBED) with ip's own message. */
export async function ip(args: string[]): Promise<string> {
  try {
    const { stdout } = await run("ip", args, { timeout: 20_000 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string; code?: string };
    const msg =
      err.code === "ENOENT"
        ? "the `ip` command (iproute2) is not installed"
        : err.stderr?.trim() || err.message;
    throw new WeirError(ErrorCodes.TESTBED, `ip ${args.join(" ")}: ${msg}`, { cause: e });
  }
}

export const netnsExists = (name: string, roots = defaultNetRoots): boolean =>
  existsSync(join(roots.netnsDir, name));

export const linkExists = (name: string, roots = defaultNetRoots): boolean =>
  existsSync(join(roots.sysfs, "class/net", name));

export function listNetns(roots = defaultNetRoots): string[] {
  try {
    return readdirSync(roots.netnsDir);
  } catch {
    return [];
  }
}

export async function hostAddresses(): Promise<AssignedAddress[]> {
  return parseIpAddrShow(await ip(["-o", "-4", "addr", "show"]));
}

const ipv6Available = (roots: NetRoots) => existsSync(join(roots.procfs, "sys/net/ipv6"));

/** Turn IPv6 off for everything created in the namespace from now on (and lo). */
export async function disableIpv6InNetns(ns: string, roots = defaultNetRoots): Promise<void> {
  if (!ipv6Available(roots)) return;
  await ip([
    "netns",
    "exec",
    ns,
    "sh",
    "-c",
    "for c in all default lo; do echo 1 > /proc/sys/net/ipv6/conf/$c/disable_ipv6; done",
  ]);
}

export function disableIpv6OnHostLink(ifname: string, roots = defaultNetRoots): void {
  const file = join(roots.procfs, "sys/net/ipv6/conf", ifname, "disable_ipv6");
  if (!existsSync(file)) return;
  writeFileSync(file, "1");
}
