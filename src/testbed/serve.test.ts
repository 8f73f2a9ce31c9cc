import { type ChildProcess, spawn } from "node:child_process";
import dgram from "node:dgram";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { decodeReply, encodeRequest } from "./protocol.ts";
import { parseServeArgv } from "./serve.ts";

describe("parseServeArgv", () => {
  it("TCP on the UDP port's number by default, another port, or off", () => {
    expect(parseServeArgv(["--port", "9000"])).toEqual({
      port: 9000,
      costRounds: 600,
      maxLifetimeMs: 3_600_000,
    });
    expect(parseServeArgv(["--port", "9000", "--tcp-port", "9100"]).tcpPort).toBe(9100);
    expect(parseServeArgv(["--port", "9000", "--tcp-port", "off"]).tcpPort).toBeNull();
    expect(() => parseServeArgv(["--port", "9000", "--tcp-port", "x"])).toThrow(
      "'tcp-port' must be an integer >= 0: current value is x",
    );
  });

  it("--steady-heap", () => {
    expect(parseServeArgv(["--port", "9000", "--steady-heap"]).steadyHeap).toBe(true);
    expect(parseServeArgv(["--port", "9000"]).steadyHeap).toBeUndefined();
  });

  it("workers: 1..64", () => {
    expect(parseServeArgv(["--port", "9000", "--workers", "2"]).workers).toBe(2);
    expect(() => parseServeArgv(["--port", "9000", "--workers", "0"])).toThrow(
      "'workers' must be an integer within 1..64: current value is 0",
    );
  });
});

const ENTRY = fileURLToPath(new URL("./serve-entry.ts", import.meta.url));
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const started: ChildProcess[] = [];
afterEach(() => {
  for (const c of started.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
});

/** Pids of the direct children of `pid` (from /proc/<pid>/task/<pid>/children). */
const childrenOf = (pid: number): number[] => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
};
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The server with `--workers 2` on 127.0.0.1; resolves with the process and the port once both workers are ready. */
async function startTwoWorkers(
  extra: string[] = [],
): Promise<{ proc: ChildProcess; port: number; out: () => string }> {
  const proc = spawn(
    process.execPath,
    ["--import", TSX, ENTRY, "--port", "0", "--host", "127.0.0.1", "--tcp-port", "off"].concat([
      "--cost-rounds",
      "10",
      "--workers",
      "2",
      "--max-lifetime-ms",
      "60000",
      ...extra,
    ]),
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  started.push(proc);
  let out = "";
  proc.stdout?.on("data", (d) => {
    out += String(d);
  });
  const ready = () => out.split("\n").filter((l) => l.includes('"ready"'));
  await until("both workers ready", () => ready().length === 2, 30_000);
  const ports = ready().map((l) => (JSON.parse(l) as { port: number }).port);
  expect(ports[0]).toBe(ports[1]); // one socket, shared
  return { proc, port: ports[0]!, out: () => out };
}

/** Send `n` requests to 127.0.0.1:`port` and wait until each has its reply. */
async function expectReplies(port: number, n: number): Promise<void> {
  const sock = dgram.createSocket("udp4");
  const seqs = new Set<number>();
  sock.on("message", (m) => {
    const r = decodeReply(m);
    if (r) seqs.add(r.seq);
  });
  for (let i = 0; i < n; i++)
    sock.send(encodeRequest(Buffer.alloc(64), 7, i, i), port, "127.0.0.1");
  try {
    await until(`${n} replies`, () => seqs.size === n);
  } finally {
    sock.close();
  }
}

/** SIGTERM the parent: it exits 0 once both workers have closed. */
async function expectCleanStop(proc: ChildProcess, out: () => string): Promise<void> {
  proc.kill("SIGTERM");
  await until("the parent exited", () => proc.exitCode !== null);
  expect(proc.exitCode).toBe(0);
  expect(out()).toContain('"event":"closed","workers":2');
}

describe("packet server with --workers (node:cluster)", () => {
  it("two worker processes answer on one port; SIGTERM stops them and the parent", async () => {
    const { proc, port, out } = await startTwoWorkers();
    const workers = childrenOf(proc.pid!);
    expect(workers).toHaveLength(2);
    await expectReplies(port, 20);
    await expectCleanStop(proc, out);
    expect(workers.filter(alive)).toEqual([]);
  }, 60_000);

  it("--steady-heap: each worker says its heap is steady, serves and exits cleanly", async () => {
    const { proc, port, out } = await startTwoWorkers(["--steady-heap"]);
    const ready = out()
      .split("\n")
      .filter((l) => l.includes('"ready"'))
      .map((l) => JSON.parse(l) as { steadyHeap: boolean });
    expect(ready.map((r) => r.steadyHeap)).toEqual([true, true]);
    await expectReplies(port, 200);
    await expectCleanStop(proc, out);
  }, 60_000);

  it("the workers exit when the parent is SIGKILLed", async () => {
    const { proc } = await startTwoWorkers();
    const workers = childrenOf(proc.pid!);
    expect(workers).toHaveLength(2);
    proc.kill("SIGKILL");
    await until("both workers gone", () => workers.every((p) => !alive(p)));
  }, 60_000);
});
