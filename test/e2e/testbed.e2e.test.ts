// Root, real network namespaces, veth pairs, cgroup v1 (this host) and real UDP packets.
// Each test builds a testbed with its own prefix (weirt-<pid>-<x>), sends bounded load
// (seconds, a few thousand packets) and tears it down; afterAll tears down anything a
// failed test left. The servers and hogs it starts also exit by themselves after 2 min.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { inTestNet } from "../../src/testbed/addresses.ts";
import { runLoad } from "../../src/testbed/load.ts";
import { defaultStateFile } from "../../src/testbed/names.ts";
import { readState, type TestbedState } from "../../src/testbed/state.ts";
import { testbedStatus } from "../../src/testbed/status.ts";
import { testbedDown, testbedUp } from "../../src/testbed/testbed.ts";
import { expectNothingLeft, ipOut, snapshot } from "./leftovers.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const BASE = `weirt-${process.pid}`;
const CPU = "/sys/fs/cgroup/cpu";
const CPUACCT = "/sys/fs/cgroup/cpuacct";
const isRoot = process.getuid?.() === 0;
const stateFiles = new Set<string>();

afterAll(async () => {
  for (const f of stateFiles) {
    if (existsSync(f)) await testbedDown(f).catch(() => {});
  }
});

const counter = (ifname: string, name: "rx_packets" | "tx_packets") =>
  Number(readFileSync(`/sys/class/net/${ifname}/statistics/${name}`, "utf8"));
const cpuacctUsageNs = (rel: string) =>
  Number(readFileSync(`${CPUACCT}/${rel}/cpuacct.usage`, "utf8"));

describe.skipIf(!isRoot)("testbed on real namespaces, veths and cgroups (root)", () => {
  it("brings up 2 partitions + 1 hog, carries real load, and tears down to nothing", async () => {
    const prefix = `${BASE}-a`;
    stateFiles.add(defaultStateFile(prefix));
    const st = await testbedUp({
      prefix,
      partitions: 2,
      hogs: 1,
      costRounds: 200,
      groupCpuShares: 4096,
      maxLifetimeMs: 120_000,
    });
    expect(st.cgroup.version).toBe(1);
    expect(st.partitions.map((p) => p.name)).toEqual(["p1", "p2"]);
    expect(st.hogs.map((h) => h.name)).toEqual(["hog1"]);

    const netnsList = ipOut("netns", "list");
    for (const p of st.partitions) {
      // addresses: a /30 in 198.18.0.0/15 on each side
      expect(inTestNet(p.hostAddr) && inTestNet(p.nsAddr)).toBe(true);
      expect(p.prefixLen).toBe(30);
      expect(ipOut("-o", "-4", "addr", "show", "dev", p.hostIf)).toContain(`${p.hostAddr}/30`);
      expect(ipOut("-n", p.netns, "-o", "-4", "addr", "show", "dev", p.nsIf)).toContain(
        `${p.nsAddr}/30`,
      );
      expect(netnsList).toContain(p.netns);
      // IPv6 off on both ends (no neighbour discovery in the counters)
      expect(readFileSync(`/proc/sys/net/ipv6/conf/${p.hostIf}/disable_ipv6`, "utf8").trim()).toBe(
        "1",
      );
      expect(
        ipOut(
          "netns",
          "exec",
          p.netns,
          "cat",
          `/proc/sys/net/ipv6/conf/${p.nsIf}/disable_ipv6`,
        ).trim(),
      ).toBe("1");
      // the server runs inside the namespace and inside both cgroup hierarchies
      const pid = p.serverPid!;
      expect(readlinkSync(`/proc/${pid}/ns/net`)).toBe(
        `net:[${statSync(`/run/netns/${p.netns}`).ino}]`,
      );
      const cg = readFileSync(`/proc/${pid}/cgroup`, "utf8");
      expect(cg).toMatch(new RegExp(`:cpu,?[a-z,]*:/${prefix}/${p.name}\\n`));
      expect(cg).toMatch(new RegExp(`:[a-z,]*cpuacct[a-z,]*:/${prefix}/${p.name}\\n`));
      expect(p.sensor).toEqual({
        cgroup: `${prefix}/${p.name}`,
        interfaces: [{ name: p.hostIf, offered: "tx", served: "rx" }],
        netnsInterfaces: [{ name: "eth0", offered: "rx", served: "tx" }],
        pid,
      });
    }
    expect(new Set(st.partitions.map((p) => p.nsAddr)).size).toBe(2);

    // The hog burns CPU in its own cgroup.
    const hog = st.hogs[0]!;
    expect(readFileSync(`${CPU}/${hog.cgroup}/cgroup.procs`, "utf8").split("\n")).toContain(
      String(hog.pid),
    );
    const hogBefore = cpuacctUsageNs(hog.cgroup);
    await sleep(500);
    expect(cpuacctUsageNs(hog.cgroup)).toBeGreaterThan(hogBefore);

    // Idempotent: a second up keeps everything (same pids, addresses, record).
    const again = await testbedUp({
      prefix,
      partitions: 2,
      hogs: 1,
      costRounds: 200,
      maxLifetimeMs: 120_000,
    });
    expect(again.partitions.map((p) => [p.serverPid, p.nsAddr])).toEqual(
      st.partitions.map((p) => [p.serverPid, p.nsAddr]),
    );
    expect(again.hogs[0]!.pid).toBe(hog.pid);
    expect(again.resources.length).toBe(st.resources.length);

    // Real load: 2 s at 300 pps per partition, at most 2,000 packets.
    const before = st.partitions.map((p) => ({
      tx: counter(p.hostIf, "tx_packets"),
      rx: counter(p.hostIf, "rx_packets"),
    }));
    const r = await runLoad({
      targets: st.partitions.map((p) => ({ name: p.name, addr: p.nsAddr, port: p.port })),
      schedule: { kind: "constant", pps: 300 },
      durationMs: 2000,
      maxPackets: 2000,
      timeoutMs: 3000,
    });
    st.partitions.forEach((p, i) => {
      const t = r.targets[i]!;
      const tx = counter(p.hostIf, "tx_packets") - before[i]!.tx;
      const rx = counter(p.hostIf, "rx_packets") - before[i]!.rx;
      expect(t.sent).toBeGreaterThan(0);
      expect(t.answered).toBeGreaterThan(0);
      // host veth: every request went out (tx), every answer came back in (rx)
      expect(tx).toBeGreaterThanOrEqual(t.sent);
      expect(rx).toBeGreaterThanOrEqual(t.answered);
    });
    expect(r.totals.sent).toBeLessThanOrEqual(2000);

    expect(testbedStatus(st.stateFile).healthy).toBe(true);
    const rec = snapshot(readState(st.stateFile)!);
    const down = await testbedDown(st.stateFile);
    expect(down.failed).toEqual([]);
    expect(down.clean).toBe(true);
    expect(down.killed.sort()).toEqual([...rec.pids].sort());
    expectNothingLeft(rec);
    expect(testbedStatus(st.stateFile, { prefix }).nothingLeft).toBe(true);
  });

  it("a partition capped at 10 % of a CPU serves visibly less than one capped at 50 %", async () => {
    const prefix = `${BASE}-q`;
    stateFiles.add(defaultStateFile(prefix));
    // The testbed group gets a large share so the rest of this busy host does not decide the result.
    const st = await testbedUp({
      prefix,
      partitions: [{ name: "p10" }, { name: "p50" }],
      costRounds: 2000,
      groupCpuShares: 16_384,
      maxLifetimeMs: 120_000,
    });
    const [p10, p50] = st.partitions;
    writeFileSync(`${CPU}/${p10!.cgroup}/cpu.cfs_period_us`, "100000");
    writeFileSync(`${CPU}/${p10!.cgroup}/cpu.cfs_quota_us`, "10000");
    writeFileSync(`${CPU}/${p50!.cgroup}/cpu.cfs_period_us`, "100000");
    writeFileSync(`${CPU}/${p50!.cgroup}/cpu.cfs_quota_us`, "50000");

    // Same offered rate to both, above what either can serve: 1,500 pps for 3 s (<= 9,000 packets).
    const rx0 = st.partitions.map((p) => counter(p.hostIf, "rx_packets"));
    const cpu0 = st.partitions.map((p) => cpuacctUsageNs(p.cgroup));
    let rxAtEnd: number[] = [];
    let cpuAtEnd: number[] = [];
    const sampleAtEnd = sleep(3000).then(() => {
      rxAtEnd = st.partitions.map((p) => counter(p.hostIf, "rx_packets"));
      cpuAtEnd = st.partitions.map((p) => cpuacctUsageNs(p.cgroup));
    });
    const r = await runLoad({
      targets: st.partitions.map((p) => ({ name: p.name, addr: p.nsAddr, port: p.port })),
      schedule: { kind: "constant", pps: 1500 },
      durationMs: 3000,
      maxPackets: 9000,
      timeoutMs: 2000,
    });
    await sampleAtEnd;
    const served = rxAtEnd.map((v, i) => v - rx0[i]!);
    const cpuSec = cpuAtEnd.map((v, i) => (v - cpu0[i]!) / 1e9);
    const [sent10, sent50] = r.targets.map((t) => t.sent);
    console.log(
      `quota test: offered ${sent10}/${sent50}, served (host rx) p10=${served[0]} p50=${served[1]}, ` +
        `CPU s p10=${cpuSec[0]!.toFixed(2)} p50=${cpuSec[1]!.toFixed(2)}, answered ${r.targets.map((t) => t.answered).join("/")}`,
    );
    // Same offered load (within 20 %), clearly more than either serves.
    expect(Math.abs(sent10! - sent50!)).toBeLessThan(0.2 * sent50!);
    expect(served[1]!).toBeLessThan(sent50!);
    // Served follows the cap: ~5x expected; "visibly less" = at most half.
    expect(served[0]!).toBeGreaterThan(0);
    expect(served[1]!).toBeGreaterThanOrEqual(2 * served[0]!);
    // and the 10 % cap held: at most ~0.1 CPU-s per second (+ slack for the 4 ms accounting tick)
    expect(cpuSec[0]!).toBeLessThan(0.1 * 3 + 0.15);
    expect(cpuSec[1]!).toBeGreaterThan(cpuSec[0]!);

    const rec = snapshot(readState(st.stateFile)!);
    expect((await testbedDown(st.stateFile)).clean).toBe(true);
    expectNothingLeft(rec);
  });

  // SIGKILL `weir testbed up` at three points; `down` from the record must leave nothing.
  const killPoints: { name: string; when: (s: TestbedState) => boolean }[] = [
    { name: "while creating veths", when: (s) => s.resources.some((r) => r.kind === "link") },
    { name: "while starting servers", when: (s) => s.resources.some((r) => r.kind === "process") },
    {
      name: "after every process started",
      when: (s) =>
        s.resources.filter((r) => r.kind === "process" && r.status === "created").length === 3,
    },
  ];
  for (const [i, kp] of killPoints.entries()) {
    it(`SIGKILL of \`weir testbed up\` ${kp.name}: down from the record leaves nothing`, async () => {
      const prefix = `${BASE}-k${i}`;
      const stateFile = defaultStateFile(prefix);
      stateFiles.add(stateFile);
      const child = spawn(
        process.execPath,
        [
          path.join(REPO, "bin/weir.js"),
          "testbed",
          "up",
          "--prefix",
          prefix,
          "--partitions",
          "2",
          "--hogs",
          "1",
          "--cost-rounds",
          "100",
          "--max-lifetime",
          "2m",
        ],
        { cwd: REPO, stdio: "ignore" },
      );
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      let killedMidway = false;
      const until = Date.now() + 120_000;
      while (Date.now() < until && child.exitCode === null) {
        let s: TestbedState | null = null;
        try {
          s = readState(stateFile);
        } catch {
          // never half-written (rename), but be tolerant
        }
        if (s && kp.when(s)) {
          child.kill("SIGKILL");
          killedMidway = true;
          break;
        }
        await sleep(5);
      }
      await exited;
      expect(killedMidway).toBe(true);
      // Let orphans run on (a server may still be starting): down must find them anyway.
      await sleep(1000);
      const stateNow = readState(stateFile)!;
      const rec = snapshot(stateNow);
      expect(testbedStatus(stateFile).resources.some((r) => r.exists)).toBe(true);
      const down = await testbedDown(stateFile);
      expect(down.failed).toEqual([]);
      expect(down.clean).toBe(true);
      expectNothingLeft(rec);
    });
  }
});
