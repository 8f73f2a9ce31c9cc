// Addresses for testbed partitions: a /30 per partition out of 198.18.0.0/15 (RFC 2544
// benchmarking range), host side .1, namespace side .2. Pure: the caller passes in the
// addresses already in use on the host, read from `ip -o -4 addr show`.
import { ErrorCodes, WeirError } from "../core/errors.ts";

export const TEST_NET = "198.18.0.0";
export const TEST_NET_PREFIX_LEN = 15;
export const PARTITION_PREFIX_LEN = 30;
const BLOCK_SIZE = 2 ** (32 - PARTITION_PREFIX_LEN); // 4 addresses
const NET_SIZE = 2 ** (32 - TEST_NET_PREFIX_LEN); // 131072 addresses
export const BLOCK_COUNT = NET_SIZE / BLOCK_SIZE; // 32768 blocks

export function ipToInt(ip: string): number {
  const parts = ip.split(".");
  if (parts.length !== 4) throw new WeirError(ErrorCodes.TESTBED, `not an IPv4 address: ${ip}`);
  let n = 0;
  for (const p of parts) {
    const v = Number(p);
    if (!/^\d{1,3}$/.test(p) || v > 255) {
      throw new WeirError(ErrorCodes.TESTBED, `not an IPv4 address: ${ip}`);
    }
    n = n * 256 + v;
  }
  return n;
}

export const intToIp = (n: number): string =>
  [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");

const NET_BASE = ipToInt(TEST_NET);

export const inTestNet = (ip: string): boolean => {
  const n = ipToInt(ip);
  return n >= NET_BASE && n < NET_BASE + NET_SIZE;
};

export interface PartitionAddresses {
  block: number;
  /** Network address of the /30, e.g. 198.18.0.4. */
  network: string;
  hostAddr: string;
  nsAddr: string;
  prefixLen: number;
}

export function blockAddresses(block: number): PartitionAddresses {
  if (!Number.isInteger(block) || block < 0 || block >= BLOCK_COUNT) {
    throw new WeirError(ErrorCodes.TESTBED, `address block out of range: ${block}`);
  }
  const net = NET_BASE + block * BLOCK_SIZE;
  return {
    block,
    network: intToIp(net),
    hostAddr: intToIp(net + 1),
    nsAddr: intToIp(net + 2),
    prefixLen: PARTITION_PREFIX_LEN,
  };
}

/** The /30 block an address of the test net falls in. */
export function blockOf(ip: string): number {
  if (!inTestNet(ip))
    throw new WeirError(ErrorCodes.TESTBED, `${ip} is not in ${TEST_NET}/${TEST_NET_PREFIX_LEN}`);
  return Math.floor((ipToInt(ip) - NET_BASE) / BLOCK_SIZE);
}

/** An IPv4 address assigned to a host interface (from `ip -o -4 addr show`). */
export interface AssignedAddress {
  ifname: string;
  addr: string;
  prefixLen: number;
}

/** Parse `ip -o -4 addr show` lines: "9: eth0    inet 198.18.0.1/30 scope global eth0\ ...". */
export function parseIpAddrShow(text: string): AssignedAddress[] {
  const out: AssignedAddress[] = [];
  for (const line of text.split("\n")) {
    const m = /^\d+:\s+(\S+)\s+inet\s+(\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(line);
    if (m) out.push({ ifname: m[1]!.replace(/@.*$/, ""), addr: m[2]!, prefixLen: Number(m[3]) });
  }
  return out;
}

/** Blocks of the test net that any assigned address (with its whole prefix) overlaps. */
export function usedBlocks(assigned: AssignedAddress[]): Set<number> {
  const used = new Set<number>();
  for (const a of assigned) {
    const size = 2 ** (32 - a.prefixLen);
    const start = Math.floor(ipToInt(a.addr) / size) * size;
    const end = start + size; // exclusive
    const lo = Math.max(start, NET_BASE);
    const hi = Math.min(end, NET_BASE + NET_SIZE);
    for (let n = lo; n < hi; n += BLOCK_SIZE) used.add(Math.floor((n - NET_BASE) / BLOCK_SIZE));
    if (used.size >= BLOCK_COUNT) break;
  }
  return used;
}

/**
 * Where a testbed with this prefix starts looking for free blocks: a hash of the
 * prefix (FNV-1a), so testbeds with different prefixes rarely even probe the same blocks.
 */
export function startBlockFor(prefix: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < prefix.length; i++) {
    h ^= prefix.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % BLOCK_COUNT;
}

/** `count` free blocks, probing upward from `start` (wrapping). Throws when the net is full. */
export function allocateBlocks(count: number, used: Set<number>, start: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < BLOCK_COUNT && out.length < count; i++) {
    const b = (start + i) % BLOCK_COUNT;
    if (!used.has(b)) out.push(b);
  }
  if (out.length < count) {
    throw new WeirError(
      ErrorCodes.TESTBED,
      `no free /30 left in ${TEST_NET}/${TEST_NET_PREFIX_LEN} for ${count} partitions`,
    );
  }
  return out;
}
