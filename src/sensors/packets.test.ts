import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes, type WeirError } from "../core/errors.ts";
import {
  HeldInterfaceCounters,
  HeldNamespaceCounters,
  packetCountsOf,
  readInterfaceCounters,
  readNetDev,
  readSnmpUdp,
} from "./packets.ts";

const FIX = path.join(import.meta.dirname, "fixtures");
const sysfs = path.join(FIX, "sys");
const procfs = path.join(FIX, "proc");

const tmpDirs: string[] = [];
afterEach(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function copyTree(src: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "weir-pk-"));
  tmpDirs.push(d);
  fs.cpSync(src, d, { recursive: true });
  return d;
}

describe("interface counters (sysfs)", () => {
  it("reads all six statistics of an interface", () => {
    expect(readInterfaceCounters(sysfs, "vweb0")).toEqual({
      rx_packets: 711,
      tx_packets: 3000,
      rx_bytes: 46215,
      tx_bytes: 195000,
      rx_dropped: 0,
      tx_dropped: 4,
    });
  });

  it("host side of a veth: offered = tx + tx_dropped, served = rx, dropped = tx_dropped", () => {
    const held = new HeldInterfaceCounters(sysfs, { name: "vweb0", offered: "tx", served: "rx" });
    // offered 3000 sent + 4 dropped on the way in = 3004; served 711 replies
    expect(held.read()).toEqual({ offeredPackets: 3004, servedPackets: 711, droppedPackets: 4 });
    held.close();
  });

  it("the other direction: offered = rx + rx_dropped", () => {
    const held = new HeldInterfaceCounters(sysfs, { name: "vweb1", offered: "rx", served: "tx" });
    // 100 + 2 = 102 offered, 250 served, 2 dropped
    expect(held.read()).toEqual({ offeredPackets: 102, servedPackets: 250, droppedPackets: 2 });
    held.close();
  });

  it("the held read and the pure mapping agree", () => {
    const spec = { name: "vweb0", offered: "tx", served: "rx" } as const;
    const held = new HeldInterfaceCounters(sysfs, spec);
    expect(held.read()).toEqual(packetCountsOf(readInterfaceCounters(sysfs, "vweb0"), spec));
    held.close();
  });

  it("re-reads changed counters on the same descriptors", () => {
    const root = copyTree(sysfs);
    const held = new HeldInterfaceCounters(root, { name: "vweb0", offered: "tx", served: "rx" });
    fs.writeFileSync(path.join(root, "class/net/vweb0/statistics/tx_packets"), "3500\n");
    expect(held.read().offeredPackets).toBe(3504);
    expect(held.reopens).toBe(0);
    held.close();
  });

  it("an interface that does not exist is INTERFACE_GONE (retryable), naming it", () => {
    try {
      new HeldInterfaceCounters(sysfs, { name: "vnope", offered: "tx", served: "rx" });
      expect.unreachable();
    } catch (e) {
      expect((e as WeirError).code).toBe(ErrorCodes.INTERFACE_GONE);
      expect((e as WeirError).retryable).toBe(true);
      expect((e as WeirError).message).toContain("interface vnope is gone");
    }
    expect(() => readInterfaceCounters(sysfs, "vnope")).toThrow(
      expect.objectContaining({ code: ErrorCodes.INTERFACE_GONE }),
    );
  });

  it.each(["", "../../etc", "..", "a/b", "eth0:1", "has space", "sixteen-chars-xx"])(
    "rejects interface name %j as CONFIG_INVALID before touching sysfs",
    (name) => {
      expect(() => new HeldInterfaceCounters(sysfs, { name, offered: "tx", served: "rx" })).toThrow(
        expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID }),
      );
      expect(() => readInterfaceCounters(sysfs, name)).toThrow(
        expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID }),
      );
    },
  );

  it("malformed content is COUNTER_MALFORMED with the file path", () => {
    const root = copyTree(sysfs);
    const held = new HeldInterfaceCounters(root, { name: "vweb0", offered: "tx", served: "rx" });
    const file = path.join(root, "class/net/vweb0/statistics/rx_packets");
    fs.writeFileSync(file, "-5\n");
    expect(() => held.read()).toThrow(
      expect.objectContaining({
        code: ErrorCodes.COUNTER_MALFORMED,
        message: expect.stringContaining(file),
      }),
    );
    held.close();
  });
});

describe("namespace counters (/proc/<pid>/net)", () => {
  it("one-off reads of net/dev and snmp", () => {
    expect(readNetDev(procfs, 4242).get("lo")?.rx_packets).toBe(12);
    expect(readSnmpUdp(procfs, 4242).inErrors).toBe(2289);
  });

  it("default: every interface but lo, offered = rx (+ drop), served = tx", () => {
    const ns = new HeldNamespaceCounters(procfs, 4242, undefined);
    // veth-web-ns: rx 3000 + drop 4, tx 711; eth1: rx 7072 + 0, tx 3941
    expect(ns.readPackets()).toEqual({
      offeredPackets: 3004 + 7072,
      servedPackets: 711 + 3941,
      droppedPackets: 4,
    });
    expect(ns.readUdp()).toEqual({ inDatagrams: 711, inErrors: 2289, rcvbufErrors: 2289 });
    ns.close();
  });

  it("chosen interfaces only", () => {
    const ns = new HeldNamespaceCounters(procfs, 4242, [
      { name: "veth-web-ns", offered: "rx", served: "tx" },
    ]);
    expect(ns.readPackets()).toEqual({
      offeredPackets: 3004,
      servedPackets: 711,
      droppedPackets: 4,
    });
    ns.close();
  });

  it("null interfaces: no net/dev, zeros, snmp still read", () => {
    const ns = new HeldNamespaceCounters(procfs, 4242, null);
    expect(ns.readPackets()).toEqual({ offeredPackets: 0, servedPackets: 0, droppedPackets: 0 });
    expect(ns.readUdp().inErrors).toBe(2289);
    ns.close();
  });

  it("a chosen interface missing from the namespace is INTERFACE_GONE", () => {
    const ns = new HeldNamespaceCounters(procfs, 4242, [
      { name: "eth7", offered: "rx", served: "tx" },
    ]);
    expect(() => ns.readPackets()).toThrow(
      expect.objectContaining({
        code: ErrorCodes.INTERFACE_GONE,
        message: expect.stringContaining("eth7"),
      }),
    );
    ns.close();
  });

  it("rejects a pid that is not a positive integer", () => {
    for (const pid of [0, -1, 1.5, Number.NaN])
      expect(() => new HeldNamespaceCounters(procfs, pid, undefined)).toThrow(
        expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID }),
      );
  });

  it("a pid that does not exist is PROCESS_GONE, terminal", () => {
    try {
      new HeldNamespaceCounters(procfs, 999999, undefined);
      expect.unreachable();
    } catch (e) {
      expect((e as WeirError).code).toBe(ErrorCodes.PROCESS_GONE);
      expect((e as WeirError).retryable).toBe(false);
      expect((e as WeirError).message).toContain("process 999999");
    }
  });

  it("after close, reads say PROCESS_GONE instead of touching a released namespace", () => {
    const ns = new HeldNamespaceCounters(procfs, 4242, undefined);
    ns.close();
    expect(() => ns.readPackets()).toThrow(
      expect.objectContaining({ code: ErrorCodes.PROCESS_GONE }),
    );
  });
});
