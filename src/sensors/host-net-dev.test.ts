import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes, isWeirError } from "../core/errors.ts";
import { openHostNetDev } from "./host-net-dev.ts";
import { interfacesSource } from "./source-interfaces.ts";
import type { InterfaceSpec, PacketCounter, Roots, SensorSpec } from "./types.ts";

const FIX = path.join(import.meta.dirname, "fixtures");
// fixtures/host-proc/net/dev is in the kernel's format with the same counters as the sysfs
// files under fixtures/sys; fixtures/proc has no net/dev (the source then reads sysfs)
const netDevRoots = (procfs = path.join(FIX, "host-proc")): Roots => ({
  sysfs: path.join(FIX, "sys"),
  procfs,
  cgroupfs: path.join(FIX, "v1", "cgroup"),
});
const sysfsRoots: Roots = { ...netDevRoots(), procfs: path.join(FIX, "proc") };

const opened: PacketCounter[] = [];
const tmpDirs: string[] = [];
afterEach(() => {
  for (const c of opened.splice(0)) c.close();
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function open(roots: Roots, interfaces: InterfaceSpec[]): PacketCounter {
  const spec: SensorSpec = { cgroup: "weir/web", interfaces };
  const c = interfacesSource.open({ partition: "web", spec, roots, options: undefined });
  opened.push(c);
  return c;
}

/** A copy of fixtures/host-proc to change; returns its procfs root and its net/dev path. */
function netDevCopy(): { procfs: string; file: string } {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "weir-netdev-"));
  tmpDirs.push(d);
  fs.cpSync(path.join(FIX, "host-proc"), d, { recursive: true });
  return { procfs: d, file: path.join(d, "net/dev") };
}

/** Replace one number of an interface's line (column 0..15) keeping the kernel's layout. */
function setColumn(file: string, ifname: string, column: number, value: number): void {
  const lines = fs.readFileSync(file, "latin1").split("\n");
  const i = lines.findIndex((l) => l.trimStart().startsWith(`${ifname}:`));
  const [head, rest] = [lines[i]!.slice(0, lines[i]!.indexOf(":") + 1), lines[i]!.split(":")[1]!];
  const nums = rest.trim().split(/\s+/);
  nums[column] = String(value);
  lines[i] = `${head} ${nums.join(" ")}`;
  fs.writeFileSync(file, lines.join("\n"));
}
const TX_PACKETS = 9;

const codeOf = (f: () => unknown): string | null => {
  try {
    f();
    return null;
  } catch (e) {
    return isWeirError(e) ? e.code : "not a WeirError";
  }
};

describe("interfaces source: /proc/net/dev against sysfs", () => {
  const cases: Array<[string, InterfaceSpec[]]> = [
    ["host end of a veth (offered tx)", [{ name: "vweb0", offered: "tx", served: "rx" }]],
    ["offered rx", [{ name: "vweb1", offered: "rx", served: "tx" }]],
    [
      "two interfaces summed",
      [
        { name: "vweb0", offered: "tx", served: "rx" },
        { name: "vweb1", offered: "tx", served: "rx" },
      ],
    ],
  ];
  it.each(cases)("%s: the same counts from either file", (_, interfaces) => {
    const fromNetDev = open(netDevRoots(), interfaces).read();
    const fromSysfs = open(sysfsRoots, interfaces).read();
    expect(fromNetDev).toEqual(fromSysfs);
    expect(fromNetDev.offeredPackets).toBeGreaterThan(0);
  });

  it("the fixture's numbers: offered = tx + tx drops, served = rx, dropped = tx drops", () => {
    expect(open(netDevRoots(), [{ name: "vweb0", offered: "tx", served: "rx" }]).read()).toEqual({
      offeredPackets: 3000 + 4,
      servedPackets: 711,
      droppedPackets: 4,
    });
  });

  it("this host's lo: /proc/net/dev lies between two sysfs reads around it", () => {
    const lo: InterfaceSpec[] = [{ name: "lo", offered: "tx", served: "rx" }];
    const real: Roots = { sysfs: "/sys", procfs: "/proc", cgroupfs: "/sys/fs/cgroup" };
    const sysfs = open({ ...real, procfs: FIX /* no net/dev here: sysfs */ }, lo);
    const netDev = open(real, lo);
    // other processes use loopback meanwhile: counters only grow, so bracket the read
    const before = sysfs.read();
    const mid = netDev.read();
    const after = sysfs.read();
    for (const k of ["offeredPackets", "servedPackets", "droppedPackets"] as const) {
      expect(mid[k]).toBeGreaterThanOrEqual(before[k]);
      expect(mid[k]).toBeLessThanOrEqual(after[k]);
    }
  });
});

describe("the shared /proc/net/dev", () => {
  const vweb0: InterfaceSpec[] = [{ name: "vweb0", offered: "tx", served: "rx" }];

  it("reads with the same round share one read; a new round or no round reads again", () => {
    const { procfs, file } = netDevCopy();
    const a = open(netDevRoots(procfs), vweb0);
    const b = open(netDevRoots(procfs), vweb0);
    const round = {};
    expect(a.read(round).servedPackets).toBe(711);
    setColumn(file, "vweb0", TX_PACKETS, 3100);
    // b's read in the same round is the round's read
    expect(b.read(round).offeredPackets).toBe(3004);
    expect(a.read({}).offeredPackets).toBe(3104);
    setColumn(file, "vweb0", TX_PACKETS, 3200);
    expect(b.read().offeredPackets).toBe(3204);
  });

  it("parses again only when the text changed: the same table while it did not", () => {
    const { procfs, file } = netDevCopy();
    const net = openHostNetDev(procfs)!;
    try {
      const first = net.read({});
      // a new round with the same text: the file is read, the table is the one parsed before
      expect(net.read({})).toBe(first);
      expect(net.read()).toBe(first);
      setColumn(file, "vweb0", TX_PACKETS, 3100);
      const moved = net.read({});
      expect(moved).not.toBe(first);
      expect(moved.get("vweb0")!.tx_packets).toBe(3100);
      expect(first.get("vweb0")!.tx_packets).toBe(3000);
      // back to the first text: parsed again (only the last text is remembered), its values
      setColumn(file, "vweb0", TX_PACKETS, 3000);
      expect(net.read({}).get("vweb0")!.tx_packets).toBe(3000);
    } finally {
      net.close();
    }
  });

  it("an interface missing from the file is INTERFACE_GONE (retryable), counted again once back", () => {
    const { procfs, file } = netDevCopy();
    expect(
      codeOf(() => open(netDevRoots(procfs), [{ name: "vnope", offered: "tx", served: "rx" }])),
    ).toBe(ErrorCodes.INTERFACE_GONE);
    const c = open(netDevRoots(procfs), vweb0);
    const text = fs.readFileSync(file, "latin1");
    fs.writeFileSync(file, text.replace(/^ *vweb0:.*\n/m, ""));
    let err: unknown;
    try {
      c.read();
    } catch (e) {
      err = e;
    }
    expect(isWeirError(err) && err.code).toBe(ErrorCodes.INTERFACE_GONE);
    expect(isWeirError(err) && err.retryable).toBe(true);
    expect(String((err as Error).message)).toContain("vweb0");
    fs.writeFileSync(file, text);
    expect(c.read().offeredPackets).toBe(3004);
  });

  it("a malformed file is COUNTER_MALFORMED naming the file", () => {
    const { procfs, file } = netDevCopy();
    const c = open(netDevRoots(procfs), vweb0);
    fs.writeFileSync(file, "not the kernel's table\n");
    expect(() => c.read()).toThrow(file);
    expect(codeOf(() => c.read())).toBe(ErrorCodes.COUNTER_MALFORMED);
  });

  it("one descriptor for every opening, released when the last closes; close is idempotent", () => {
    const { procfs } = netDevCopy();
    const fds = () => fs.readdirSync("/proc/self/fd").length;
    const n0 = fds();
    const first = openHostNetDev(procfs)!;
    const others = Array.from({ length: 5 }, () => openHostNetDev(procfs)!);
    expect(fds()).toBe(n0 + 1);
    first.close();
    first.close();
    expect(others[0]!.read().get("vweb0")!.tx_packets).toBe(3000);
    for (const o of others) o.close();
    expect(fds()).toBe(n0);
    expect(openHostNetDev(path.join(FIX, "proc"))).toBeNull();
  });
});
