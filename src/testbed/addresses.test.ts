import { describe, expect, it } from "vitest";
import {
  allocateBlocks,
  BLOCK_COUNT,
  blockAddresses,
  blockOf,
  inTestNet,
  intToIp,
  ipToInt,
  parseIpAddrShow,
  startBlockFor,
  usedBlocks,
} from "./addresses.ts";

describe("addresses", () => {
  it("converts between dotted quads and integers", () => {
    expect(ipToInt("198.18.0.1")).toBe(198 * 2 ** 24 + 18 * 2 ** 16 + 1);
    expect(intToIp(ipToInt("198.19.255.254"))).toBe("198.19.255.254");
    expect(() => ipToInt("198.18.0")).toThrow(/not an IPv4/);
    expect(() => ipToInt("198.18.0.256")).toThrow(/not an IPv4/);
  });

  it("gives each partition a /30 inside 198.18.0.0/15: host .1, namespace .2", () => {
    expect(blockAddresses(0)).toEqual({
      block: 0,
      network: "198.18.0.0",
      hostAddr: "198.18.0.1",
      nsAddr: "198.18.0.2",
      prefixLen: 30,
    });
    // block 64 = 64 * 4 = 256 addresses in = 198.18.1.0
    expect(blockAddresses(64).hostAddr).toBe("198.18.1.1");
    // 2^17 addresses / 4 = 32768 blocks; the last is 198.19.255.252/30
    expect(BLOCK_COUNT).toBe(32768);
    const last = blockAddresses(BLOCK_COUNT - 1);
    expect([last.hostAddr, last.nsAddr]).toEqual(["198.19.255.253", "198.19.255.254"]);
    expect(inTestNet(last.nsAddr)).toBe(true);
    expect(inTestNet("198.20.0.1")).toBe(false);
    expect(() => blockAddresses(BLOCK_COUNT)).toThrow(/out of range/);
    expect(blockOf("198.18.1.2")).toBe(64);
    expect(blockOf(last.nsAddr)).toBe(BLOCK_COUNT - 1);
    expect(() => blockOf("10.0.0.1")).toThrow(/not in 198.18.0.0\/15/);
  });

  it("parses `ip -o -4 addr show`", () => {
    const text = [
      "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever",
      "4: eth0    inet 10.0.2.15/24 brd 10.0.2.255 scope global eth0\\       valid_lft forever preferred_lft forever",
      "9: weir-p1    inet 198.18.0.5/30 scope global weir-p1\\       valid_lft forever preferred_lft forever",
    ].join("\n");
    expect(parseIpAddrShow(text)).toEqual([
      { ifname: "lo", addr: "127.0.0.1", prefixLen: 8 },
      { ifname: "eth0", addr: "10.0.2.15", prefixLen: 24 },
      { ifname: "weir-p1", addr: "198.18.0.5", prefixLen: 30 },
    ]);
  });

  it("marks every block an assigned prefix overlaps, and none outside the test net", () => {
    expect([...usedBlocks([{ ifname: "a", addr: "198.18.0.5", prefixLen: 30 }])]).toEqual([1]);
    // a /24 covers 256 / 4 = 64 blocks: 198.18.1.0/24 = blocks 64..127
    const b = usedBlocks([{ ifname: "a", addr: "198.18.1.9", prefixLen: 24 }]);
    expect(b.size).toBe(64);
    expect(Math.min(...b)).toBe(64);
    expect(usedBlocks([{ ifname: "eth0", addr: "10.0.2.15", prefixLen: 8 }]).size).toBe(0);
    // 198.0.0.0/8 covers the whole /15
    expect(usedBlocks([{ ifname: "x", addr: "198.1.2.3", prefixLen: 8 }]).size).toBe(BLOCK_COUNT);
  });

  it("allocates free blocks from a start, skipping used ones and wrapping", () => {
    expect(allocateBlocks(3, new Set([11, 12]), 10)).toEqual([10, 13, 14]);
    expect(allocateBlocks(2, new Set([BLOCK_COUNT - 1]), BLOCK_COUNT - 1)).toEqual([0, 1]);
    const all = new Set(Array.from({ length: BLOCK_COUNT }, (_, i) => i));
    all.delete(7);
    expect(allocateBlocks(1, all, 0)).toEqual([7]);
    expect(() => allocateBlocks(2, all, 0)).toThrow(/no free \/30/);
  });

  it("starts different prefixes at different places", () => {
    const a = startBlockFor("weirt-100-a");
    expect(startBlockFor("weirt-100-a")).toBe(a);
    expect(startBlockFor("weirt-100-b")).not.toBe(a);
    expect(a).toBeGreaterThanOrEqual(0);
    expect(a).toBeLessThan(BLOCK_COUNT);
  });
});
