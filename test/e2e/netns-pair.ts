// A network namespace the test makes, joined to the host by a veth pair in 198.18.0.0/15,
// with a discard UDP socket on each end and a child process inside that sends on request.
// Counts are exact: IPv6 off on both ends (no neighbour discovery), static neighbour entries
// (no ARP), and both ends listen (no ICMP port-unreachable replies). Used by the counter
// source contract (counter-sources.e2e.test.ts). Everything is named weirt<pid>… and removed
// by `teardown`, which kills only the child this file started, by its pid.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import dgram from "node:dgram";
import fs from "node:fs";
import readline from "node:readline";

const sh = (cmd: string, ...args: string[]): string =>
  execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

// The child inside the namespace: discards what arrives (counting it), sends on request.
const CHILD = `
const dgram = require("node:dgram");
const [ownAddr, hostAddr, hostPort] = process.argv.slice(1);
const s = dgram.createSocket("udp4");
let got = 0;
s.on("message", () => { got++; });
s.bind(0, ownAddr, () => process.stdout.write("port " + s.address().port + "\\n"));
require("node:readline").createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "got") { process.stdout.write("got " + got + "\\n"); return; }
  const m = /^send (\\d+)$/.exec(line);
  if (!m) return;
  let left = Number(m[1]);
  if (left === 0) { process.stdout.write("sent\\n"); return; }
  const payload = Buffer.alloc(64, 2);
  for (let i = 0, n = left; i < n; i++)
    s.send(payload, Number(hostPort), hostAddr, () => { if (--left === 0) process.stdout.write("sent\\n"); });
});
setTimeout(() => process.exit(0), 300000).unref();
`;

export interface NetnsPair {
  ns: string;
  hostIf: string;
  nsIf: string;
  /** The child's pid (a process in the namespace). */
  pid: number;
  /** `offered` datagrams host → namespace and `served` namespace → host, each received. */
  traffic(offered: number, served: number): Promise<void>;
  /** Kill the child (by its pid) and wait for it to exit. */
  killChild(): Promise<void>;
  deleteHostIf(): void;
  teardown(): Promise<void>;
}

export async function makeNetnsPair(tag: string, subnet: number): Promise<NetnsPair> {
  const ns = `weirt${process.pid}${tag}`;
  const hostIf = `wt${process.pid}${tag}h`.slice(0, 15);
  const nsIf = `wt${process.pid}${tag}n`.slice(0, 15);
  const hostAddr = `198.18.${subnet}.1`;
  const nsAddr = `198.18.${subnet}.2`;
  sh("ip", "netns", "add", ns);
  sh("ip", "link", "add", hostIf, "type", "veth", "peer", "name", nsIf);
  sh("ip", "link", "set", nsIf, "netns", ns);
  sh("sysctl", "-qw", `net.ipv6.conf.${hostIf}.disable_ipv6=1`);
  sh("ip", "netns", "exec", ns, "sysctl", "-qw", `net.ipv6.conf.${nsIf}.disable_ipv6=1`);
  sh("ip", "addr", "add", `${hostAddr}/30`, "dev", hostIf);
  sh("ip", "-n", ns, "addr", "add", `${nsAddr}/30`, "dev", nsIf);
  sh("ip", "link", "set", hostIf, "up");
  sh("ip", "-n", ns, "link", "set", nsIf, "up");
  const macOf = (file: string) => fs.readFileSync(file, "utf8").trim();
  const hostMac = macOf(`/sys/class/net/${hostIf}/address`);
  const nsMac = sh("ip", "netns", "exec", ns, "cat", `/sys/class/net/${nsIf}/address`).trim();
  sh("ip", "neigh", "replace", nsAddr, "lladdr", nsMac, "dev", hostIf, "nud", "permanent");
  sh(
    "ip",
    "-n",
    ns,
    "neigh",
    "replace",
    hostAddr,
    "lladdr",
    hostMac,
    "dev",
    nsIf,
    "nud",
    "permanent",
  );

  const host = dgram.createSocket("udp4");
  let hostGot = 0;
  host.on("message", () => {
    hostGot++;
  });
  await new Promise<void>((r) => host.bind(0, hostAddr, () => r()));
  const hostPort = host.address().port;

  const child: ChildProcess = spawn(
    "ip",
    ["netns", "exec", ns, process.execPath, "-e", CHILD, nsAddr, hostAddr, String(hostPort)],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines: string[] = [];
  let waiters: Array<() => boolean> = [];
  readline.createInterface({ input: child.stdout! }).on("line", (l) => {
    lines.push(l);
    waiters = waiters.filter((w) => !w());
  });
  const waitLine = (pred: (l: string) => boolean): Promise<string> =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${ns}: child did not answer`)), 20_000);
      const check = () => {
        const i = lines.findIndex(pred);
        if (i < 0) return false;
        clearTimeout(t);
        resolve(lines.splice(i, 1)[0]!);
        return true;
      };
      if (!check()) waiters.push(check);
    });
  const nsPort = Number((await waitLine((l) => l.startsWith("port "))).slice(5));
  const childGot = async (): Promise<number> => {
    child.stdin!.write("got\n");
    return Number((await waitLine((l) => l.startsWith("got "))).slice(4));
  };

  const sender = dgram.createSocket("udp4");
  await new Promise<void>((r) => sender.bind(0, hostAddr, () => r()));
  let sentToNs = 0;

  async function until(what: string, ok: () => Promise<boolean> | boolean): Promise<void> {
    for (let i = 0; i < 400; i++) {
      if (await ok()) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`${ns}: ${what} did not arrive within 4 s`);
  }

  const pair: NetnsPair = {
    ns,
    hostIf,
    nsIf,
    pid: child.pid!,
    async traffic(offered, served) {
      const payload = Buffer.alloc(64, 1);
      await Promise.all(
        Array.from(
          { length: offered },
          () => new Promise((r) => sender.send(payload, nsPort, nsAddr, r)),
        ),
      );
      sentToNs += offered;
      const hostBefore = hostGot;
      child.stdin!.write(`send ${served}\n`);
      await waitLine((l) => l === "sent");
      await until("datagrams to the namespace", async () => (await childGot()) === sentToNs);
      await until("datagrams to the host", () => hostGot === hostBefore + served);
    },
    async killChild() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    },
    deleteHostIf() {
      if (fs.existsSync(`/sys/class/net/${hostIf}`)) sh("ip", "link", "del", hostIf);
    },
    async teardown() {
      await pair.killChild();
      sender.close();
      host.close();
      pair.deleteHostIf();
      sh("ip", "netns", "del", ns);
    },
  };
  return pair;
}
