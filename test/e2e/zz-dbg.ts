import fs from "node:fs";
import dgram from "node:dgram";
import path from "node:path";
import type { ChildProcess } from "node:child_process";
import { attachedProgramIds } from "../../src/bpf/objects.ts";
import { spawnCgroupPeer, rmdirCgroup } from "./cgroup-peer.ts";
import { spawnWeirRun } from "./weir-run.ts";
import { freePort, sleep } from "./wait.ts";
const P = `weirt-${process.pid}-dbg`;
const H = ["cpu", "cpuacct", "unified"].map((h) => `/sys/fs/cgroup/${h}`);
const mode = process.argv[2]; // "start" | "later"
const made: string[] = [];
const mk = (c: string) => { for (const h of H) { const d = path.join(h, P, c); fs.mkdirSync(d); made.push(d); } };
for (const h of H) { fs.mkdirSync(path.join(h, P)); made.push(path.join(h, P)); }
const children: ChildProcess[] = [];
const port = await freePort();
fs.writeFileSync("/tmp/dbg/w.yaml", `capacity: { cpus: 2 }
intervalMs: 200
api: { listen: "127.0.0.1:${port}" }
${process.argv[3] === "cfg" ? `partitions:\n  - { name: c, cgroup: ${P}/c, kind: batch }\n` : ""}discover:
  intervalMs: 200
  partitions:
    - { cgroup: ${P}/batch-*, kind: batch, name: "b-{1}" }
    - { cgroup: ${P}/net-*, packets: bpf, name: "n-{1}", importance: 1 }
`);
mk("batch-x");
if (process.argv[3] === "cfg") mk("c");
if (mode === "start") mk("net-a");
const w = spawnWeirRun("/tmp/dbg/w.yaml", children);
await sleep(3000);
if (mode === "later" || mode === "early") mk("net-a");
if (mode !== "early") await sleep(2000);
const peer = await spawnCgroupPeer(H.map((h) => path.join(h, P, "net-a", "cgroup.procs")));
await sleep(3000);
console.log("attached", attachedProgramIds(path.join(H[2]!, P, "net-a"), 0), attachedProgramIds(path.join(H[2]!, P, "net-a"), 1));
const s = dgram.createSocket("udp4");
await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
for (let i = 0; i < 100; i++) await new Promise((r) => s.send(Buffer.alloc(64), peer.udpPort, "127.0.0.1", r));
await sleep(1000);
console.log("peer got", await peer.got());
const m = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
console.log(m.split("\n").filter((l) => l.startsWith("weir_partition_packets_total")).join("\n"));
w.child.kill("SIGTERM");
console.log("exit", await w.exited);
await peer.kill();
s.close();
for (const d of made.reverse()) await rmdirCgroup(d);
console.log(w.err().split("\n").filter((l) => /discover|bpf|error|"level":[56]0/i.test(l)).join("\n"));
