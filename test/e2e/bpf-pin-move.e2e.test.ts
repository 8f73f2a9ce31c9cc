// Root, real kernel: a partition counted by eBPF with `pin: true` whose `cgroup` changes
// between runs. The pinned programs follow the partition to its new cgroup: they are detached
// from the cgroup they were attached to before (recorded beside the pins), so the old
// cgroup's packets are no longer counted and `pin: false` can remove everything. Before the
// fix the resumed programs stayed attached to the old cgroup too, counting both, and the old
// attachment could never be removed by weir. CgroupSkbCounters is opened directly on cgroup v2
// directories weirt-rv-pin-<pid>/{a,b} of the unified tree, with its pins on a bpffs mounted
// for this test under /tmp; the one process started here is killed by its pid.
import { execFileSync } from "node:child_process";
import dgram from "node:dgram";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CgroupSkbCounters } from "../../src/bpf/cgroup-counters.ts";
import { attachedProgramIds } from "../../src/bpf/objects.ts";
import { BPF_CGROUP_INET_EGRESS, BPF_CGROUP_INET_INGRESS } from "../../src/bpf/syscall.ts";
import { parseCpuList } from "../../src/sensors/parse.ts";
import { type CgroupPeer, rmdirCgroup, spawnCgroupPeer, until } from "./cgroup-peer.ts";

const V2 = "/sys/fs/cgroup/unified";
const canRun = process.getuid?.() === 0 && fs.existsSync(path.join(V2, "cgroup.controllers"));
const PARENT = path.join(V2, `weirt-rv-pin-${process.pid}`);
const dirOf = (c: "a" | "b" | "c") => path.join(PARENT, c);
const BPFFS = `/tmp/weirt-rv-pin-${process.pid}-bpffs`;
const PIN_DIR = path.join(BPFFS, "weir", "rv-x");
const possibleCpus =
  Math.max(
    ...parseCpuList(fs.readFileSync("/sys/devices/system/cpu/possible", "utf8"), "possible"),
  ) + 1;
let mounted = false;
let peer: CgroupPeer | null = null;
let sender: dgram.Socket | null = null;

const open = (c: "a" | "b" | "c", pin: boolean) =>
  new CgroupSkbCounters({
    partition: "rv-x",
    cgroupDir: dirOf(c),
    possibleCpus,
    pinDir: PIN_DIR,
    pin,
  });
/** How many programs are attached at each hook of the cgroup: [ingress, egress]. */
const attached = (c: "a" | "b" | "c") => [
  attachedProgramIds(dirOf(c), BPF_CGROUP_INET_INGRESS).length,
  attachedProgramIds(dirOf(c), BPF_CGROUP_INET_EGRESS).length,
];

describe.skipIf(!canRun)(
  "pinned bpf counters whose partition moved to another cgroup (root, e2e)",
  () => {
    beforeAll(async () => {
      fs.mkdirSync(PARENT);
      for (const c of ["a", "b", "c"] as const) fs.mkdirSync(dirOf(c));
      fs.mkdirSync(BPFFS);
      execFileSync("mount", ["-t", "bpf", "bpf", BPFFS]);
      mounted = true;
      peer = await spawnCgroupPeer([path.join(dirOf("b"), "cgroup.procs")]);
      sender = dgram.createSocket("udp4");
      await new Promise<void>((r) => sender!.bind(0, "127.0.0.1", () => r()));
    });

    afterAll(async () => {
      sender?.close();
      await peer?.kill();
      // whatever a failed test left pinned: taken up and removed the documented way, per cgroup
      for (const c of ["a", "b", "c"] as const)
        if (fs.existsSync(path.join(PIN_DIR, "counters")) && fs.existsSync(dirOf(c)))
          open(c, false).close();
      if (mounted) execFileSync("umount", [BPFFS]);
      fs.rmSync(BPFFS, { recursive: true, force: true });
      for (const c of ["a", "b", "c"] as const) await rmdirCgroup(dirOf(c));
      await rmdirCgroup(PARENT);
    });

    it("detaches the pinned programs from the old cgroup and counts only the new one's packets", async () => {
      open("b", true).close();
      expect(attached("b")).toEqual([1, 1]);
      expect(fs.readdirSync(PIN_DIR).sort()).toEqual(["attached", "counters", "egress", "ingress"]);

      const moved = open("a", true);
      expect(moved.resumed).toBe(true);
      expect(moved.movedFrom).toBe(dirOf("b"));
      expect(attached("a")).toEqual([1, 1]);
      expect(attached("b")).toEqual([0, 0]); // was [1, 1]: b's packets counted as a's

      // 40 datagrams to a process in b only: not a's
      const before = moved.read().ingressPackets;
      const payload = Buffer.alloc(64, 1);
      for (let i = 0; i < 40; i++)
        await new Promise((r) => sender!.send(payload, peer!.udpPort, "127.0.0.1", r));
      await until(
        "the 40 datagrams to reach the peer in b",
        async () => (await peer!.got()) === 40,
      );
      expect(moved.read().ingressPackets - before).toBe(0); // was 40
      moved.close();

      // a restart on the same cgroup moves nothing
      const again = open("a", true);
      expect(again.resumed).toBe(true);
      expect(again.movedFrom).toBe(null);
      again.close();
      expect(attached("a")).toEqual([1, 1]);

      // pin: false on yet another cgroup takes the pins up from a: nothing of weir stays anywhere
      open("c", false).close();
      for (const c of ["a", "b", "c"] as const) expect(attached(c), c).toEqual([0, 0]);
      expect(fs.existsSync(PIN_DIR)).toBe(false);
    });

    it("a recorded cgroup that was removed meanwhile is passed over (the kernel dropped its programs)", async () => {
      open("c", true).close();
      expect(attached("c")).toEqual([1, 1]);
      await rmdirCgroup(dirOf("c"));
      expect(fs.existsSync(dirOf("c"))).toBe(false);
      const moved = open("a", true);
      expect(moved.movedFrom).toBe(dirOf("c"));
      expect(attached("a")).toEqual([1, 1]);
      moved.close();
      open("a", false).close();
      expect(attached("a")).toEqual([0, 0]);
      expect(fs.existsSync(PIN_DIR)).toBe(false);
    });

    it("pins made by a weir that recorded no cgroup are taken up as they are, and recorded from then on", () => {
      open("b", true).close();
      fs.rmSync(path.join(PIN_DIR, "attached")); // as an older weir pinned them
      const taken = open("b", true);
      expect(taken.resumed).toBe(true);
      expect(taken.movedFrom).toBe(null);
      expect(taken.unrecorded).toBe(true);
      taken.close();
      expect(fs.existsSync(path.join(PIN_DIR, "attached"))).toBe(true);
      // recorded now: the next move detaches from b
      const moved = open("a", true);
      expect(moved.unrecorded).toBe(false);
      expect(moved.movedFrom).toBe(dirOf("b"));
      moved.close();
      expect(attached("b")).toEqual([0, 0]);
      open("a", false).close();
      expect(attached("a")).toEqual([0, 0]);
      expect(fs.existsSync(PIN_DIR)).toBe(false);
    });
  },
);
