import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  CgroupUdpDrops,
  parseUdpSocketDrops,
  SOCKET_REFRESH_READS,
  socketInodes,
  UDP_TABLE_MAX_AGE_MS,
} from "./socket-drops.ts";

const HEADER =
  "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops";
const row = (sl: number, inode: number, drops: number) =>
  `  ${sl}: 0100007F:2328 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 ${inode} 2 0000000000000000 ${drops}`;

let tmp = "";
/** A clock 100 ms further on at each call: every read below sees the files as just written. */
let clockMs = 1e6;
const tick = () => (clockMs += 100);
afterEach(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  tmp = "";
});

/** A fake procfs with net/udp, net/udp6 and processes holding sockets, and a cgroup dir. */
function world(): { procfs: string; cgroup: string; udp: (rows: string[]) => void } {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "weir-sockdrops-"));
  const procfs = path.join(tmp, "proc");
  const cgroup = path.join(tmp, "cg", "web");
  fs.mkdirSync(path.join(procfs, "net"), { recursive: true });
  fs.mkdirSync(path.join(cgroup, "worker"), { recursive: true });
  const fdDir = (pid: number) => {
    const d = path.join(procfs, String(pid), "fd");
    fs.mkdirSync(d, { recursive: true });
    return d;
  };
  // pid 100 in the partition: a UDP socket (inode 5001), a pipe and a file
  fs.symlinkSync("socket:[5001]", path.join(fdDir(100), "3"));
  fs.symlinkSync("pipe:[77]", path.join(fdDir(100), "4"));
  fs.symlinkSync("/dev/null", path.join(fdDir(100), "0"));
  // pid 101 in a child cgroup of the partition: inode 5002 (IPv6)
  fs.symlinkSync("socket:[5002]", path.join(fdDir(101), "7"));
  // pid 200, a neighbour: inode 6000
  fs.symlinkSync("socket:[6000]", path.join(fdDir(200), "3"));
  fs.writeFileSync(path.join(cgroup, "cgroup.procs"), "100\n");
  fs.writeFileSync(path.join(cgroup, "worker", "cgroup.procs"), "101\n");
  const udp = (rows: string[]) => {
    fs.writeFileSync(path.join(procfs, "net", "udp"), [HEADER, ...rows.slice(0, 2)].join("\n"));
    fs.writeFileSync(path.join(procfs, "net", "udp6"), [HEADER, ...rows.slice(2)].join("\n"));
  };
  return { procfs, cgroup, udp };
}

describe("UDP socket drops of a cgroup's processes", () => {
  it("parses each socket's drops by inode", () => {
    const m = parseUdpSocketDrops(
      [HEADER, row(0, 5001, 12), row(1, 6000, 3), "garbage"].join("\n"),
    );
    expect([...m]).toEqual([
      [5001, 12],
      [6000, 3],
    ]);
  });

  it("finds the sockets of the cgroup's processes and its descendants' only", () => {
    const w = world();
    expect([...socketInodes(w.procfs, [100, 101])].sort()).toEqual([5001, 5002]);
    expect([...socketInodes(w.procfs, [100, 999])]).toEqual([5001]); // 999 exited
  });

  it("counts the rise of the partition's sockets' drops, not the neighbour's, from the first read on", () => {
    const w = world();
    const drops = new CgroupUdpDrops(w.procfs, w.cgroup);
    w.udp([row(0, 5001, 40), row(1, 6000, 9), row(2, 5002, 5)]);
    expect(drops.read(tick())).toBe(0); // the first read is the baseline
    w.udp([row(0, 5001, 52), row(1, 6000, 900), row(2, 5002, 8)]);
    expect(drops.read(tick())).toBe(15); // 12 + 3; the neighbour's 891 are not ours
    // a socket's counter read lower (closed and its inode reused) adds nothing
    w.udp([row(0, 5001, 2), row(1, 6000, 900), row(2, 5002, 8)]);
    expect(drops.read(tick())).toBe(15);
    w.udp([row(0, 5001, 6), row(1, 6000, 900), row(2, 5002, 8)]);
    expect(drops.read(tick())).toBe(19);
  });

  it("one read of the host's UDP tables serves every partition for UDP_TABLE_MAX_AGE_MS", () => {
    const w = world();
    const drops = new CgroupUdpDrops(w.procfs, w.cgroup);
    const t = tick();
    w.udp([row(0, 5001, 0), row(1, 6000, 0), row(2, 5002, 0)]);
    expect(drops.read(t)).toBe(0);
    // rewritten within the window: the table read at t still stands
    w.udp([row(0, 5001, 7), row(1, 6000, 0), row(2, 5002, 0)]);
    expect(drops.read(t + UDP_TABLE_MAX_AGE_MS - 1)).toBe(0);
    expect(drops.read(t + UDP_TABLE_MAX_AGE_MS)).toBe(7);
  });

  it("re-lists the sockets every SOCKET_REFRESH_READS reads: a new socket counts from when it is first seen", () => {
    const w = world();
    const drops = new CgroupUdpDrops(w.procfs, w.cgroup);
    w.udp([row(0, 5001, 0), row(1, 6000, 0), row(2, 5002, 0)]);
    drops.read(tick());
    fs.symlinkSync("socket:[5003]", path.join(w.procfs, "100", "fd", "9"));
    const rows = (n: number) => [row(0, 5001, 0), row(1, 5003, n), row(2, 5002, 0)];
    for (let i = 1; i < SOCKET_REFRESH_READS; i++) {
      w.udp(rows(100 * i));
      expect(drops.read(tick())).toBe(0); // 5003 not listed yet
    }
    w.udp(rows(5000));
    expect(drops.read(tick())).toBe(0); // listed now: 5,000 is its baseline
    w.udp(rows(5010));
    expect(drops.read(tick())).toBe(10);
  });
});
