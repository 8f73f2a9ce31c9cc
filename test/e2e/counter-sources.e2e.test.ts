// The counter source contract (src/sensors/contract.ts) over every registered source, on real
// counters (root): `interfaces` on the host end of a veth into a namespace this test makes,
// `pid` on /proc/<pid>/net of a process in it, `agent` on signed reports of that namespace's
// real counters (read as the agent reads them) received over UDP by the manager's report source,
// `bpf` on eBPF programs attached to a cgroup v2 directory this test makes, holding a process
// that sends and receives datagrams on loopback (the host's network: no namespace).
import dgram from "node:dgram";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { OwnCounters } from "../../src/agent/counters.ts";
import { attachedProgramIds } from "../../src/bpf/objects.ts";
import { BPF_CGROUP_INET_EGRESS, BPF_CGROUP_INET_INGRESS } from "../../src/bpf/syscall.ts";
import { cgroup2Mount } from "../../src/cgroup/layout.ts";
import { ErrorCodes } from "../../src/core/errors.ts";
import { type CounterSourceFixture, counterSourceContract } from "../../src/sensors/contract.ts";
import { COUNTER_SOURCES, counterSource } from "../../src/sensors/sources.ts";
import { defaultRoots, type SensorSpec } from "../../src/sensors/types.ts";
import { encodeReport, KeyRing } from "../../src/transport/codec.ts";
import { DatagramAgentChannel, DatagramReportSource } from "../../src/transport/datagram.ts";
import { rmdirCgroup, spawnCgroupPeer, until } from "./cgroup-peer.ts";
import { makeNetnsPair } from "./netns-pair.ts";

const canRun =
  process.getuid?.() === 0 &&
  ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"].some((p) => fs.existsSync(p));

/** How each registered source is exercised; a source without an entry fails the check below. */
const fixtures: Record<string, () => Promise<CounterSourceFixture>> = {
  async interfaces() {
    const pair = await makeNetnsPair("i", 201);
    const spec: SensorSpec = {
      cgroup: "",
      interfaces: [{ name: pair.hostIf, offered: "tx", served: "rx" }],
    };
    return {
      open: () =>
        counterSource("interfaces").open({
          partition: "t",
          spec,
          roots: defaultRoots,
          options: undefined,
        }),
      traffic: (o, s) => pair.traffic(o, s),
      vanish: async () => pair.deleteHostIf(),
      goneCode: ErrorCodes.INTERFACE_GONE,
      teardown: () => pair.teardown(),
    };
  },
  async pid() {
    const pair = await makeNetnsPair("p", 202);
    const spec: SensorSpec = { cgroup: "", interfaces: [], pid: pair.pid };
    return {
      open: () =>
        counterSource("pid").open({
          partition: "t",
          spec,
          roots: defaultRoots,
          options: undefined,
        }),
      traffic: (o, s) => pair.traffic(o, s),
      vanish: () => pair.killChild(),
      goneCode: ErrorCodes.PROCESS_GONE,
      teardown: () => pair.teardown(),
    };
  },
  async agent() {
    const pair = await makeNetnsPair("a", 203);
    const key = new Uint8Array(32).fill(7);
    const keys = new KeyRing([{ index: 0, id: "t", key }]);
    const manager = await DatagramReportSource.open({ keys });
    const channel = await DatagramAgentChannel.open({
      partitionIndex: 0,
      key,
      manager: manager.address(),
      bind: { address: "127.0.0.1" },
    });
    // what the agent inside reads: its namespace's net/dev and snmp (here through the child)
    const own = new OwnCounters({
      procfs: "/proc",
      cgroupfs: "/sys/fs/cgroup",
      pid: pair.pid,
      cgroup: null,
    });
    let sequence = 0;
    const report = async () => {
      const c = own.read();
      sequence++;
      channel.publish(
        encodeReport(
          {
            partitionIndex: 0,
            sequence,
            timestampMs: Date.now(),
            ...c,
            velocityPacketsPerCpuSec: null,
            velocityWindowMs: 0,
          },
          key,
        ),
      );
      for (let i = 0; i < 200 && manager.latest().get("t")?.sequence !== sequence; i++)
        await new Promise((r) => setTimeout(r, 10));
      expect(manager.latest().get("t")?.sequence).toBe(sequence);
    };
    await report();
    const agentReports = { latest: (p: string) => manager.latest().get(p)?.sample };
    const spec: SensorSpec = { cgroup: "", interfaces: [] };
    return {
      open: () =>
        counterSource("agent").open({
          partition: "t",
          spec,
          roots: defaultRoots,
          options: undefined,
          agentReports,
        }),
      traffic: async (o, s) => {
        await pair.traffic(o, s);
        await report();
      },
      async teardown() {
        own.close();
        channel.close();
        manager.close();
        await pair.teardown();
      },
    };
  },
  async bpf() {
    const unified = cgroup2Mount("/sys/fs/cgroup");
    if (unified === null) throw new Error("no cgroup2 mount: the bpf source needs one");
    const name = `weirt-${process.pid}-bpf`;
    const dir = path.join(unified, name);
    fs.mkdirSync(dir);
    const peer = await spawnCgroupPeer([path.join(dir, "cgroup.procs")]);
    const sink = dgram.createSocket("udp4");
    let sinkGot = 0;
    sink.on("message", () => {
      sinkGot++;
    });
    await new Promise<void>((r) => sink.bind(0, "127.0.0.1", () => r()));
    const sender = dgram.createSocket("udp4");
    let sentToPeer = 0;
    const spec: SensorSpec = { cgroup: name, interfaces: [] };
    const options = { offered: "ingress", served: "egress", pin: false };
    return {
      open: () =>
        counterSource("bpf").open({ partition: name, spec, roots: defaultRoots, options }),
      async traffic(o, s) {
        const payload = Buffer.alloc(64, 1);
        await Promise.all(
          Array.from(
            { length: o },
            () => new Promise((r) => sender.send(payload, peer.udpPort, "127.0.0.1", r)),
          ),
        );
        sentToPeer += o;
        const before = sinkGot;
        await peer.send(s, sink.address().port);
        await until("datagrams to the peer", async () => (await peer.got()) === sentToPeer);
        await until("datagrams from the peer", () => sinkGot === before + s);
      },
      async vanish() {
        await peer.kill();
        await rmdirCgroup(dir);
      },
      goneCode: ErrorCodes.CGROUP_GONE,
      async teardown() {
        await peer.kill();
        sender.close();
        sink.close();
        if (fs.existsSync(dir)) {
          // every opening was closed: none of weir's programs is left on the cgroup
          expect(attachedProgramIds(dir, BPF_CGROUP_INET_INGRESS)).toEqual([]);
          expect(attachedProgramIds(dir, BPF_CGROUP_INET_EGRESS)).toEqual([]);
        }
        await rmdirCgroup(dir);
      },
    };
  },
};

describe.skipIf(!canRun)("every registered counter source meets the contract (root, e2e)", () => {
  it("has a real-counter fixture for every registered source", () => {
    expect(Object.keys(fixtures).sort()).toEqual(COUNTER_SOURCES.map((s) => s.name).sort());
  });
  for (const source of COUNTER_SOURCES) {
    const make = fixtures[source.name];
    if (make) counterSourceContract(source, make);
  }
});
