// Parsers for the kernel's counter files: pure functions from text to numbers.
// Each takes the path only to name it in a COUNTER_MALFORMED error.
import { ErrorCodes, WeirError } from "../core/errors.ts";

/** A COUNTER_MALFORMED error quoting the file and the text that did not fit. */
export function malformed(path: string, what: string, text: string): WeirError {
  const shown = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  return new WeirError(
    ErrorCodes.COUNTER_MALFORMED,
    `${path}: ${what}: ${JSON.stringify(shown)}`,
    // A half-written or odd file may read fine next cycle.
    { retryable: true },
  );
}

const UNSIGNED = /^\d+$/;
const SIGNED = /^-?\d+$/;

/**
 * The unsigned decimal in text[from, to), or -1 when that is empty or not all digits.
 * A scanner rather than a regex: this runs several times per partition per cycle.
 */
function digitsAt(text: string, from: number, to: number): number {
  if (to <= from) return -1;
  if (to - from > 15) {
    // beyond 2^53 territory: let Number() round exactly as it would
    for (let i = from; i < to; i++) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) return -1;
    }
    return Number(text.slice(from, to));
  }
  let v = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** A single unsigned decimal followed by a newline (sysfs statistics, cpuacct.usage). */
export function parseCounterValue(text: string, path: string): number {
  const end = text.charCodeAt(text.length - 1) === 10 ? text.length - 1 : text.length;
  const v = digitsAt(text, 0, end);
  if (v < 0) throw malformed(path, "expected one unsigned integer", text);
  return v;
}

/**
 * Flat keyed file, one `key value` per line (cgroup cpu.stat v1 and v2). Every line must
 * parse; which keys are required is up to the caller.
 */
export function parseFlatKeyed(text: string, path: string): Map<string, number> {
  const out = new Map<string, number>();
  scanFlatKeyed(text, path, (keyStart, keyEnd, value) => {
    out.set(text.slice(keyStart, keyEnd), value);
  });
  return out;
}

/** Walks a flat keyed file, checking every line; calls `onPair` with the key's bounds. */
function scanFlatKeyed(
  text: string,
  path: string,
  onPair: (keyStart: number, keyEnd: number, value: number) => void,
): void {
  let pos = 0;
  let lineNo = 1;
  while (pos < text.length) {
    let eol = text.indexOf("\n", pos);
    if (eol < 0) eol = text.length;
    if (eol === pos) throw malformed(path, `empty line ${lineNo}`, text);
    const sp = text.indexOf(" ", pos);
    const value = sp > pos && sp < eol ? digitsAt(text, sp + 1, eol) : -1;
    if (value < 0) throw malformed(path, `line ${lineNo} is not "key value"`, text.slice(pos, eol));
    onPair(pos, sp, value);
    pos = eol + 1;
    lineNo++;
  }
}

/**
 * The values of `keys` in a flat keyed file (-1 for a key that is absent), every line
 * checked. No per-line strings are made: this parses cpu.stat on every sample.
 */
export function pickFlatKeyed(text: string, path: string, keys: readonly string[]): number[] {
  const out = keys.map(() => -1);
  scanFlatKeyed(text, path, (keyStart, keyEnd, value) => {
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k]!;
      if (key.length === keyEnd - keyStart && text.startsWith(key, keyStart)) {
        out[k] = value;
        return;
      }
    }
  });
  return out;
}

function required(values: number[], keys: readonly string[], path: string, text: string): void {
  const i = values.indexOf(-1);
  if (i >= 0) throw malformed(path, `missing "${keys[i]}"`, text);
}

/** CPU counters of one cgroup, in the units of CounterSample. */
export interface CpuCounters {
  /** Cumulative CPU time used, nanoseconds. */
  usageNs: number;
  /** CFS periods elapsed / throttled (0 when the file does not report them). */
  nrPeriods: number;
  nrThrottled: number;
  /** Cumulative throttled time, nanoseconds (0 when not reported). */
  throttledNs: number;
}

export type ThrottleCounters = Omit<CpuCounters, "usageNs">;

const V1_KEYS = ["nr_periods", "nr_throttled", "throttled_time"] as const;
const V2_KEYS = ["usage_usec", "nr_periods", "nr_throttled", "throttled_usec"] as const;

/** cgroup v1 `cpu/<path>/cpu.stat`: `nr_periods`, `nr_throttled`, `throttled_time` (ns). */
export function parseCpuStatV1(text: string, path: string): ThrottleCounters {
  const v = pickFlatKeyed(text, path, V1_KEYS);
  required(v, V1_KEYS, path, text);
  return { nrPeriods: v[0]!, nrThrottled: v[1]!, throttledNs: v[2]! };
}

/**
 * cgroup v2 `<path>/cpu.stat`: `usage_usec` always; `nr_periods`, `nr_throttled`,
 * `throttled_usec` only when the cpu controller is enabled for the group (0 otherwise).
 */
export function parseCpuStatV2(text: string, path: string): CpuCounters {
  const v = pickFlatKeyed(text, path, V2_KEYS);
  required(v.slice(0, 1), V2_KEYS, path, text);
  const orZero = (x: number): number => Math.max(x, 0);
  return {
    usageNs: v[0]! * 1000,
    nrPeriods: orZero(v[1]!),
    nrThrottled: orZero(v[2]!),
    throttledNs: orZero(v[3]!) * 1000,
  };
}

/** One interface's counters as /proc/net/dev and /sys/class/net/<if>/statistics name them. */
export interface InterfaceCounters {
  rx_bytes: number;
  rx_packets: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_dropped: number;
}

export const INTERFACE_COUNTER_NAMES = [
  "rx_packets",
  "tx_packets",
  "rx_bytes",
  "tx_bytes",
  "rx_dropped",
  "tx_dropped",
] as const satisfies ReadonlyArray<keyof InterfaceCounters>;

/**
 * /proc/net/dev (and /proc/<pid>/net/dev). Two header lines, then per interface
 * `%6s: ` followed by 8 receive and 8 transmit columns. Columns are found by the header's
 * names (as node_exporter does), so a kernel that adds one still parses. Long names are
 * not padded and may touch the first number (`weirt2594b:     267 ...`, `eth0:244110267`).
 * The "drop" columns are rx_dropped + rx_missed_errors and tx_dropped.
 */
export function parseNetDev(text: string, path: string): Map<string, InterfaceCounters> {
  const lines = text.split("\n");
  const header = lines[1] ?? "";
  const parts = header.split("|");
  if (!lines[0]?.startsWith("Inter-|") || parts.length !== 3)
    throw malformed(path, "unexpected header", lines.slice(0, 2).join("\n"));
  const rxNames = parts[1]!.trim().split(/\s+/);
  const txNames = parts[2]!.trim().split(/\s+/);
  const col = (names: string[], name: string, offset: number): number => {
    const i = names.indexOf(name);
    if (i < 0) throw malformed(path, `header lacks "${name}"`, header);
    return offset + i;
  };
  const idx = {
    rx_bytes: col(rxNames, "bytes", 0),
    rx_packets: col(rxNames, "packets", 0),
    rx_dropped: col(rxNames, "drop", 0),
    tx_bytes: col(txNames, "bytes", rxNames.length),
    tx_packets: col(txNames, "packets", rxNames.length),
    tx_dropped: col(txNames, "drop", rxNames.length),
  };
  const width = rxNames.length + txNames.length;
  const out = new Map<string, InterfaceCounters>();
  for (let i = 2; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === "" && i === lines.length - 1) break;
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon).trim() : "";
    const fields =
      colon > 0
        ? line
            .slice(colon + 1)
            .trim()
            .split(/\s+/)
        : [];
    if (name === "" || fields.length !== width || !fields.every((f) => UNSIGNED.test(f)))
      throw malformed(path, `line ${i + 1} is not "name: ${width} counters"`, line);
    const n = (k: number): number => Number(fields[k]);
    out.set(name, {
      rx_bytes: n(idx.rx_bytes),
      rx_packets: n(idx.rx_packets),
      rx_dropped: n(idx.rx_dropped),
      tx_bytes: n(idx.tx_bytes),
      tx_packets: n(idx.tx_packets),
      tx_dropped: n(idx.tx_dropped),
    });
  }
  return out;
}

/**
 * /proc/net/snmp (and /proc/<pid>/net/snmp): pairs of lines `Proto: Name1 Name2 ...` /
 * `Proto: v1 v2 ...`. Returns proto -> name -> value. Values may be negative (Tcp MaxConn -1).
 */
export function parseSnmp(text: string, path: string): Map<string, Map<string, number>> {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  if (lines.length % 2 !== 0) throw malformed(path, "odd number of lines", text);
  const out = new Map<string, Map<string, number>>();
  for (let i = 0; i < lines.length; i += 2) {
    const names = lines[i]!.split(" ");
    const values = lines[i + 1]!.split(" ");
    const proto = names[0]!;
    if (!proto.endsWith(":") || values[0] !== proto || names.length !== values.length)
      throw malformed(
        path,
        `lines ${i + 1}-${i + 2} are not a name/value pair`,
        `${lines[i]}\n${lines[i + 1]}`,
      );
    const row = new Map<string, number>();
    for (let k = 1; k < names.length; k++) {
      const v = values[k]!;
      if (!SIGNED.test(v))
        throw malformed(path, `${proto} ${names[k]} is not an integer`, lines[i + 1]!);
      row.set(names[k]!, Number(v));
    }
    out.set(proto.slice(0, -1), row);
  }
  return out;
}

/** UDP socket-level counters of one network namespace. */
export interface UdpCounters {
  inDatagrams: number;
  /** Every datagram dropped on receive; includes each RcvbufErrors drop (the kernel charges those twice). */
  inErrors: number;
  /** Datagrams dropped because the socket's receive buffer was full. */
  rcvbufErrors: number;
}

/**
 * The `Udp:` pair of /proc/<pid>/net/snmp. Only those two lines are parsed (the hot path
 * reads this file every cycle); they are checked as strictly as parseSnmp checks all.
 */
export function parseSnmpUdp(text: string, path: string): UdpCounters {
  const at = text.startsWith("Udp: ") ? 0 : text.indexOf("\nUdp: ") + 1;
  if (at === 0 && !text.startsWith("Udp: ")) throw malformed(path, 'no "Udp:" lines', text);
  const end1 = text.indexOf("\n", at);
  const end2 = end1 < 0 ? -1 : text.indexOf("\n", end1 + 1);
  const udp = parseSnmp(text.slice(at, end2 < 0 ? text.length : end2 + 1), path).get("Udp");
  if (udp === undefined) throw malformed(path, 'no "Udp:" lines', text);
  const get = (name: string): number => {
    const v = udp.get(name);
    if (v === undefined) throw malformed(path, `Udp lacks "${name}"`, text);
    return v;
  };
  return {
    inDatagrams: get("InDatagrams"),
    inErrors: get("InErrors"),
    rcvbufErrors: get("RcvbufErrors"),
  };
}

/**
 * Packets dropped at UDP sockets. The kernel increments InErrors for every receive drop,
 * and for a full receive buffer increments RcvbufErrors *as well* ("an ENOMEM error is
 * charged twice", net/ipv4/udp.c; seen here: 498 drops moved both by 498). So the drop
 * count is InErrors; adding RcvbufErrors would count buffer drops twice.
 */
export const udpSocketDrops = (udp: UdpCounters): number => udp.inErrors;

/** The "some" and "full" totals of a PSI file, microseconds ("full" is null where the file has no such line). */
export interface PressureTotals {
  someTotalUs: number;
  fullTotalUs: number | null;
}

/**
 * A pressure-stall file (`<cgroup v2>/cpu.pressure`, `/proc/pressure/cpu`): one line per
 * kind, `some avg10=0.52 avg60=13.16 avg300=11.53 total=54619334`, then `full ...` (cgroup
 * cpu.pressure since 5.13). `total` is cumulative microseconds during which at least one
 * task ("some") or every non-idle task ("full") of the group was runnable but not running.
 */
export function parsePressureTotals(text: string, path: string): PressureTotals {
  let some = -1;
  let full: number | null = null;
  let pos = 0;
  let lineNo = 1;
  while (pos < text.length) {
    let eol = text.indexOf("\n", pos);
    if (eol < 0) eol = text.length;
    const line = text.slice(pos, eol);
    const kind = line.startsWith("some ") ? "some" : line.startsWith("full ") ? "full" : null;
    const at = line.lastIndexOf(" total=");
    const total = kind !== null && at > 0 ? digitsAt(line, at + 7, line.length) : -1;
    if (total < 0)
      throw malformed(path, `line ${lineNo} is not "some|full avg10=… total=<usec>"`, line);
    if (kind === "some") some = total;
    else full = total;
    pos = eol + 1;
    lineNo++;
  }
  if (some < 0) throw malformed(path, 'no "some" line', text);
  return { someTotalUs: some, fullTotalUs: full };
}

/**
 * `/proc/<tid>/schedstat`: `<sum_exec_runtime ns> <run_delay ns> <timeslices>` (one line,
 * kernel/sched/stats.c proc_schedstat_show). Returns run_delay: nanoseconds the task spent
 * runnable on a run queue, waiting for a CPU.
 */
export function parseSchedstatRunDelayNs(text: string, path: string): number {
  const a = text.indexOf(" ");
  const b = a < 0 ? -1 : text.indexOf(" ", a + 1);
  const end = text.charCodeAt(text.length - 1) === 10 ? text.length - 1 : text.length;
  const runDelay = b > a ? digitsAt(text, a + 1, b) : -1;
  if (a <= 0 || runDelay < 0 || digitsAt(text, 0, a) < 0 || digitsAt(text, b + 1, end) < 0)
    throw malformed(path, 'expected "<exec ns> <run_delay ns> <timeslices>"', text);
  return runDelay;
}

/** A cgroup's member list (`cgroup.procs`, `cgroup.threads`, v1 `tasks`): one id per line, in no particular order. */
export function parseIdList(text: string, path: string): number[] {
  const out: number[] = [];
  let pos = 0;
  while (pos < text.length) {
    let eol = text.indexOf("\n", pos);
    if (eol < 0) eol = text.length;
    const id = digitsAt(text, pos, eol);
    if (id <= 0) throw malformed(path, "expected one positive id per line", text.slice(pos, eol));
    out.push(id);
    pos = eol + 1;
  }
  return out;
}

/** Highest CPU number a CPU list may name (the kernel's NR_CPUS is at most 8192 today). */
const MAX_CPU_NUMBER = 65_535;

/**
 * A kernel CPU list (`/sys/devices/system/cpu/online`, cgroup v2 `cpuset.cpus.effective`,
 * v1 `cpuset.effective_cpus` / `cpuset.cpus`): comma-separated CPU numbers and ranges,
 * `0-3,5\n`. Returns the CPU numbers ascending, each once. An empty list (`\n`: a v1 cpuset
 * nobody configured) is [].
 */
export function parseCpuList(text: string, path: string): number[] {
  const end = text.charCodeAt(text.length - 1) === 10 ? text.length - 1 : text.length;
  const cpus = new Set<number>();
  let pos = 0;
  while (pos < end) {
    let comma = text.indexOf(",", pos);
    if (comma < 0 || comma > end) comma = end;
    const dash = text.indexOf("-", pos);
    const hasRange = dash > pos && dash < comma;
    const first = digitsAt(text, pos, hasRange ? dash : comma);
    const last = hasRange ? digitsAt(text, dash + 1, comma) : first;
    if (first < 0 || last < first || last > MAX_CPU_NUMBER)
      throw malformed(path, 'expected a CPU list like "0-3,5"', text.slice(pos, comma));
    for (let cpu = first; cpu <= last; cpu++) cpus.add(cpu);
    pos = comma + 1;
    if (pos === end) throw malformed(path, 'expected a CPU list like "0-3,5"', text);
  }
  return [...cpus].sort((a, b) => a - b);
}
