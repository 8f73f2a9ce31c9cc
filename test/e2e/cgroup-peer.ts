// A child process placed in given cgroups *before* it opens a socket (a socket belongs to the
// cgroup v2 of the process that created it), then a UDP and TCP peer on loopback driven over
// stdin: `send N PORT` sends N 64-byte datagrams to 127.0.0.1:PORT, `got` prints how many it
// received, `tcp PORT K` connects to 127.0.0.1:PORT and makes K request/reply exchanges
// (keeping the connection open), `close` closes it. Killed by its pid only.
import { type ChildProcess, spawn } from "node:child_process";
import type dgram from "node:dgram";
import fs from "node:fs";
import readline from "node:readline";

const CHILD = `
const dgram = require("node:dgram"), net = require("node:net");
const rl = require("node:readline").createInterface({ input: process.stdin });
let s, got = 0, conn = null;
const out = (l) => process.stdout.write(l + "\\n");
rl.on("line", (line) => {
  const w = line.split(" ");
  if (w[0] === "go") {
    s = dgram.createSocket("udp4");
    s.on("message", () => { got++; });
    s.bind(0, "127.0.0.1", () => out("port " + s.address().port));
  } else if (w[0] === "got") out("got " + got);
  else if (w[0] === "send") {
    let left = Number(w[1]);
    if (left === 0) return out("sent");
    const p = Buffer.alloc(64, 3);
    for (let i = 0, n = left; i < n; i++) s.send(p, Number(w[2]), "127.0.0.1", () => { if (--left === 0) out("sent"); });
  } else if (w[0] === "tcp") {
    let left = Number(w[2]);
    conn = net.connect(Number(w[1]), "127.0.0.1", () => { conn.setNoDelay(true); conn.write("q"); });
    conn.on("data", () => { if (--left > 0) conn.write("q"); else out("tcp " + conn.localPort); });
  } else if (w[0] === "close") { conn?.end(); conn?.on("close", () => out("closed")); }
});
setTimeout(() => process.exit(0), 300000).unref();
`;

export interface CgroupPeer {
  pid: number;
  udpPort: number;
  /** Send `n` datagrams to 127.0.0.1:port; resolves when every send completed. */
  send(n: number, port: number): Promise<void>;
  /** Datagrams it received so far. */
  got(): Promise<number>;
  /** `k` request/reply exchanges with a TCP server on 127.0.0.1:port; resolves with its local port. */
  tcp(port: number, k: number): Promise<number>;
  closeTcp(): Promise<void>;
  kill(): Promise<void>;
}

export async function spawnCgroupPeer(procsFiles: string[]): Promise<CgroupPeer> {
  const child: ChildProcess = spawn(process.execPath, ["-e", CHILD], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines: string[] = [];
  let waiters: Array<() => boolean> = [];
  readline.createInterface({ input: child.stdout! }).on("line", (l) => {
    lines.push(l);
    waiters = waiters.filter((w) => !w());
  });
  const waitLine = (pred: (l: string) => boolean): Promise<string> =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`peer ${child.pid} did not answer`)), 20_000);
      const check = () => {
        const i = lines.findIndex(pred);
        if (i < 0) return false;
        clearTimeout(t);
        resolve(lines.splice(i, 1)[0]!);
        return true;
      };
      if (!check()) waiters.push(check);
    });
  for (const f of procsFiles) fs.writeFileSync(f, String(child.pid));
  child.stdin!.write("go\n");
  const udpPort = Number((await waitLine((l) => l.startsWith("port "))).slice(5));
  return {
    pid: child.pid!,
    udpPort,
    async send(n, port) {
      child.stdin!.write(`send ${n} ${port}\n`);
      if (n > 0) await waitLine((l) => l === "sent");
    },
    async got() {
      child.stdin!.write("got\n");
      return Number((await waitLine((l) => l.startsWith("got "))).slice(4));
    },
    async tcp(port, k) {
      child.stdin!.write(`tcp ${port} ${k}\n`);
      return Number((await waitLine((l) => l.startsWith("tcp "))).slice(4));
    },
    async closeTcp() {
      child.stdin!.write("close\n");
      await waitLine((l) => l === "closed");
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** Poll `ok` every 10 ms for up to 5 s. */
export async function until(what: string, ok: () => Promise<boolean> | boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${what} did not happen within 5 s`);
}

/**
 * `n` 64-byte datagrams from `sender` (a socket of the test's, outside every partition) to the
 * peer, 25 at a time, each batch waited for until the peer has received it all (no socket
 * drops); up to 20 s a batch.
 */
export async function sendToPeer(sender: dgram.Socket, peer: CgroupPeer, n: number): Promise<void> {
  const payload = Buffer.alloc(64, 1);
  for (let left = n; left > 0; left -= 25) {
    const k = Math.min(25, left);
    const before = await peer.got();
    await Promise.all(
      Array.from(
        { length: k },
        () => new Promise((r) => sender.send(payload, peer.udpPort, "127.0.0.1", r)),
      ),
    );
    const end = Date.now() + 20_000;
    while ((await peer.got()) !== before + k) {
      if (Date.now() > end) throw new Error(`${k} datagrams to peer ${peer.pid}: not received`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** rmdir a cgroup, retrying while its exited tasks are reaped (EBUSY). */
export async function rmdirCgroup(dir: string): Promise<void> {
  for (let i = 0; i < 50 && fs.existsSync(dir); i++) {
    try {
      fs.rmdirSync(dir);
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
