import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import {
  parseCounterValue,
  parseCpuList,
  parseCpuStatV1,
  parseCpuStatV2,
  parseFlatKeyed,
  parseIdList,
  parseNetDev,
  parsePressureTotals,
  parseSchedstatRunDelayNs,
  parseSnmp,
  parseSnmpUdp,
  udpSocketDrops,
} from "./parse.ts";

const FIX = path.join(import.meta.dirname, "fixtures");
const fixture = (rel: string): string => fs.readFileSync(path.join(FIX, rel), "latin1");

/** Runs `fn`, expects a WeirError with `code`, returns it. */
function caught(fn: () => unknown, code: string): WeirError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WeirError);
    expect((e as WeirError).code).toBe(code);
    return e as WeirError;
  }
  throw new Error("expected a throw");
}

describe("parseCounterValue", () => {
  it("reads a sysfs/cpuacct number with its newline", () => {
    expect(parseCounterValue("48213377812\n", "f")).toBe(48213377812);
    expect(parseCounterValue("0\n", "f")).toBe(0);
    expect(parseCounterValue("7", "f")).toBe(7);
  });
  it("reads 64-bit values the way Number() rounds them", () => {
    expect(parseCounterValue("18446744073709551615\n", "f")).toBe(Number("18446744073709551615"));
    expect(parseCounterValue("9007199254740993\n", "f")).toBe(Number("9007199254740993"));
    expect(parseCounterValue("123456789012345\n", "f")).toBe(123456789012345);
  });
  it.each(["", "\n", "-1\n", "12 34\n", "abc\n", " 5\n", "5\n\n", "1e3\n"])(
    "rejects %j as COUNTER_MALFORMED naming file and text",
    (text) => {
      const e = caught(
        () => parseCounterValue(text, "/sys/x/rx_packets"),
        ErrorCodes.COUNTER_MALFORMED,
      );
      expect(e.message).toContain("/sys/x/rx_packets");
      expect(e.message).toContain(JSON.stringify(text));
    },
  );
});

describe("cpu.stat", () => {
  it("v1: the three classic keys, extra keys (nr_bursts, burst_time) ignored", () => {
    expect(parseCpuStatV1(fixture("v1/cgroup/cpu/weir/web/cpu.stat"), "f")).toEqual({
      nrPeriods: 5120,
      nrThrottled: 312,
      throttledNs: 18734562210,
    });
  });
  it("v2 with the cpu controller: usage and throttled converted from usec to ns", () => {
    expect(parseCpuStatV2(fixture("v2/cgroup/weir/web/cpu.stat"), "f")).toEqual({
      usageNs: 8330232 * 1000,
      nrPeriods: 120,
      nrThrottled: 37,
      throttledNs: 1542211 * 1000,
    });
  });
  it("v2 without the cpu controller (hybrid unified/): usage only, throttling 0", () => {
    expect(parseCpuStatV2(fixture("hybrid/cgroup/unified/weir/web/cpu.stat"), "f")).toEqual({
      usageNs: 105226596000,
      nrPeriods: 0,
      nrThrottled: 0,
      throttledNs: 0,
    });
  });
  it("a missing required key is COUNTER_MALFORMED naming the key", () => {
    const e = caught(
      () => parseCpuStatV1("nr_periods 1\nnr_throttled 0\n", "/cg/cpu.stat"),
      ErrorCodes.COUNTER_MALFORMED,
    );
    expect(e.message).toContain('missing "throttled_time"');
    caught(() => parseCpuStatV2("user_usec 5\n", "f"), ErrorCodes.COUNTER_MALFORMED);
  });
  it("a line that is not `key value` is COUNTER_MALFORMED quoting the line", () => {
    const e = caught(
      () => parseFlatKeyed("usage_usec 5\nnr_periods x\n", "/cg/cpu.stat"),
      ErrorCodes.COUNTER_MALFORMED,
    );
    expect(e.message).toContain('"nr_periods x"');
    caught(
      () => parseFlatKeyed("usage_usec 5\n\nnr_periods 1\n", "f"),
      ErrorCodes.COUNTER_MALFORMED,
    );
    caught(() => parseFlatKeyed("usage_usec\n", "f"), ErrorCodes.COUNTER_MALFORMED);
    caught(() => parseFlatKeyed("usage_usec  5\n", "f"), ErrorCodes.COUNTER_MALFORMED);
    caught(() => parseFlatKeyed(" 5\n", "f"), ErrorCodes.COUNTER_MALFORMED);
    caught(() => parseFlatKeyed("usage_usec 5 6\n", "f"), ErrorCodes.COUNTER_MALFORMED);
    expect([...parseFlatKeyed("a 1\nb 2", "f")]).toEqual([
      ["a", 1],
      ["b", 2],
    ]);
  });
});

describe("parseNetDev", () => {
  it("reads every interface by the header's column names, padded, long and touching names", () => {
    const m = parseNetDev(fixture("proc/4242/net/dev"), "f");
    expect([...m.keys()]).toEqual(["lo", "veth-web-ns", "eth1"]);
    expect(m.get("veth-web-ns")).toEqual({
      rx_bytes: 195000,
      rx_packets: 3000,
      rx_dropped: 4,
      tx_bytes: 46215,
      tx_packets: 711,
      tx_dropped: 0,
    });
    // "  eth1:244110267 7072": the counter touches the colon
    expect(m.get("eth1")?.rx_bytes).toBe(244110267);
    expect(m.get("eth1")?.tx_packets).toBe(3941);
  });
  it("rejects a wrong header, a short row and a non-number", () => {
    const text = fixture("proc/4242/net/dev");
    caught(() => parseNetDev(text.replace("Inter-|", "Inter|"), "f"), ErrorCodes.COUNTER_MALFORMED);
    const lines = text.split("\n");
    const short = [...lines.slice(0, 3), "  eth9: 1 2 3", ""].join("\n");
    const e = caught(() => parseNetDev(short, "/proc/1/net/dev"), ErrorCodes.COUNTER_MALFORMED);
    expect(e.message).toContain("/proc/1/net/dev");
    expect(e.message).toContain("eth9: 1 2 3");
    caught(
      () => parseNetDev(text.replace("1200      12", "1200      x2"), "f"),
      ErrorCodes.COUNTER_MALFORMED,
    );
  });
  it("an empty namespace (header only) has no interfaces", () => {
    const header = fixture("proc/4242/net/dev").split("\n").slice(0, 2).join("\n");
    expect(parseNetDev(`${header}\n`, "f").size).toBe(0);
  });
});

describe("parseSnmp", () => {
  it("pairs header and value lines by name, negative values allowed", () => {
    const m = parseSnmp(fixture("proc/4242/net/snmp"), "f");
    expect([...m.keys()]).toEqual(["Ip", "Icmp", "IcmpMsg", "Tcp", "Udp", "UdpLite"]);
    expect(m.get("Tcp")?.get("MaxConn")).toBe(-1);
    expect(m.get("IcmpMsg")?.get("OutType3")).toBe(5);
  });
  it("Udp: InErrors is the socket drop count (it already includes RcvbufErrors)", () => {
    const udp = parseSnmpUdp(fixture("proc/4242/net/snmp"), "f");
    expect(udp).toEqual({ inDatagrams: 711, inErrors: 2289, rcvbufErrors: 2289 });
    expect(udpSocketDrops(udp)).toBe(2289);
  });
  it("finds Udp fields by name, not position", () => {
    const text = "Udp: RcvbufErrors Foo InErrors InDatagrams\nUdp: 3 9 4 10\n";
    expect(parseSnmpUdp(text, "f")).toEqual({ inDatagrams: 10, inErrors: 4, rcvbufErrors: 3 });
  });
  it("rejects mismatched pairs, odd line counts, missing Udp and non-numbers", () => {
    caught(() => parseSnmp("Udp: A B\nUdp: 1\n", "f"), ErrorCodes.COUNTER_MALFORMED);
    caught(() => parseSnmp("Udp: A B\nTcp: 1 2\n", "f"), ErrorCodes.COUNTER_MALFORMED);
    caught(() => parseSnmp("Udp: A B\n", "f"), ErrorCodes.COUNTER_MALFORMED);
    caught(() => parseSnmp("Udp: A B\nUdp: 1 x\n", "f"), ErrorCodes.COUNTER_MALFORMED);
    const e = caught(
      () => parseSnmpUdp("Tcp: A\nTcp: 1\n", "/proc/7/net/snmp"),
      ErrorCodes.COUNTER_MALFORMED,
    );
    expect(e.message).toContain("/proc/7/net/snmp");
    caught(() => parseSnmpUdp("Udp: InDatagrams\nUdp: 1\n", "f"), ErrorCodes.COUNTER_MALFORMED);
  });
});

describe("parsePressureTotals (cpu.pressure)", () => {
  it("reads the some and full totals in microseconds", () => {
    expect(parsePressureTotals(fixture("v2/cgroup/weir/web/cpu.pressure"), "f")).toEqual({
      someTotalUs: 2261384,
      fullTotalUs: 2241876,
    });
    expect(
      parsePressureTotals(fixture("hybrid/cgroup/unified/weir/web/cpu.pressure"), "f").someTotalUs,
    ).toBe(81093715);
  });
  it("a file with only the some line (/proc/pressure/cpu before 5.13) has no full total", () => {
    const text = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
    expect(parsePressureTotals(text, "f")).toEqual({ someTotalUs: 0, fullTotalUs: null });
  });
  it("rejects a missing some line, a missing total and unknown lines, naming the file", () => {
    caught(
      () => parsePressureTotals("full avg10=0.00 avg60=0.00 avg300=0.00 total=5\n", "f"),
      ErrorCodes.COUNTER_MALFORMED,
    );
    caught(
      () => parsePressureTotals("some avg10=0.00 avg60=0.00 avg300=0.00\n", "f"),
      ErrorCodes.COUNTER_MALFORMED,
    );
    const e = caught(
      () => parsePressureTotals("weird total=3\n", "/sys/fs/cgroup/x/cpu.pressure"),
      ErrorCodes.COUNTER_MALFORMED,
    );
    expect(e.message).toContain("/sys/fs/cgroup/x/cpu.pressure");
  });
});

describe("parseSchedstatRunDelayNs (/proc/<tid>/schedstat)", () => {
  it("returns the second field, run_delay in ns", () => {
    expect(parseSchedstatRunDelayNs(fixture("proc/4242/schedstat"), "f")).toBe(11649082);
    expect(parseSchedstatRunDelayNs(fixture("proc/4243/schedstat"), "f")).toBe(2204151992);
  });
  it("rejects other shapes", () => {
    for (const bad of ["", "1 2\n", "1 x 3\n", "1  2 3\n", "a 2 3\n"])
      caught(() => parseSchedstatRunDelayNs(bad, "f"), ErrorCodes.COUNTER_MALFORMED);
  });
});

describe("parseIdList (cgroup.procs, cgroup.threads, tasks)", () => {
  it("one id per line, empty file is no ids", () => {
    expect(parseIdList(fixture("v2/cgroup/weir/web/cgroup.threads"), "f")).toEqual([
      4242, 4243, 4250,
    ]);
    expect(parseIdList("", "f")).toEqual([]);
  });
  it("rejects anything else", () => {
    for (const bad of ["12\n\n", "x\n", "0\n", " 12\n"])
      caught(() => parseIdList(bad, "f"), ErrorCodes.COUNTER_MALFORMED);
  });
});

describe("parseCpuList (cpu/online, cpuset.cpus.effective, cpuset.effective_cpus)", () => {
  it("reads single CPUs and ranges, ascending and each once; an empty list is no CPUs", () => {
    // this host's /sys/devices/system/cpu/online
    expect(parseCpuList("0-1\n", "f")).toEqual([0, 1]);
    expect(parseCpuList("0-3,5\n", "f")).toEqual([0, 1, 2, 3, 5]);
    expect(parseCpuList("0,2,4-5,7", "f")).toEqual([0, 2, 4, 5, 7]);
    expect(parseCpuList("5,0-2,1\n", "f")).toEqual([0, 1, 2, 5]);
    expect(parseCpuList("3\n", "f")).toEqual([3]);
    expect(parseCpuList("\n", "f")).toEqual([]);
    expect(parseCpuList("", "f")).toEqual([]);
  });
  it.each(["x\n", "0-\n", "-3\n", "3-1\n", "0,\n", ",1\n", "0 1\n", "0-3,,5\n", "0-70000\n"])(
    "rejects %j as COUNTER_MALFORMED naming the file",
    (text) => {
      const e = caught(() => parseCpuList(text, "/sys/x/online"), ErrorCodes.COUNTER_MALFORMED);
      expect(e.message).toContain("/sys/x/online");
    },
  );
});
