// Running the packet server as a process: `runPacketServer` (what `weir testbed serve` runs),
// and the argument parsing and signal handling of serve-entry.ts (the light entry the testbed
// spawns; `weir testbed serve` has its own options, without `--workers`). With serve-entry's
// `--workers N` (N > 1) the process forks N copies of itself (node:cluster) that share its
// sockets: each worker reads from the same UDP socket when it is free to serve, so the server
// uses up to N CPUs and the kernel's socket buffer stays the only queue (a request that finds
// it full is dropped and counted by the kernel, as with one process).
import cluster from "node:cluster";
import { parseArgs } from "node:util";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { startPacketServer } from "./server.ts";
import { steadyHeap } from "./steady-heap.ts";
import { startTcpServer } from "./tcp-server.ts";

export interface ServeArgs {
  /** UDP port. */
  port: number;
  /** TCP port of the closed-loop server (tcp-server.ts); default the UDP port's number; null = no TCP. */
  tcpPort?: number | null;
  host?: string;
  costRounds: number;
  /** Processes serving the same sockets (node:cluster); absent: 1, this process. */
  workers?: number;
  maxLifetimeMs: number;
  /** Keep each serving process's heap steady (steady-heap.ts); absent: malloc's defaults. */
  steadyHeap?: boolean;
}

/** Run the server until SIGTERM/SIGINT or its max lifetime; logs one JSON line at start and end. */
export async function runPacketServer(
  args: ServeArgs,
  log = (line: string) => process.stdout.write(`${line}\n`),
): Promise<void> {
  // before the sockets, in each serving process (each worker is a process of its own)
  const heapError = args.steadyHeap ? steadyHeap() : null;
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  const { tcpPort: tcpPortArg, workers: _workers, steadyHeap: _heap, ...udpArgs } = args;
  const tcpPort = tcpPortArg === undefined ? args.port : tcpPortArg;
  // TCP listens first: once the UDP side answers a probe (testbedUp's readiness check),
  // the TCP side is listening too.
  const tcp =
    tcpPort === null
      ? null
      : await startTcpServer({ ...udpArgs, port: tcpPort, signal: ac.signal });
  let server: Awaited<ReturnType<typeof startPacketServer>>;
  try {
    server = await startPacketServer({ ...udpArgs, signal: ac.signal });
  } catch (err) {
    await tcp?.close();
    throw err;
  }
  log(
    JSON.stringify({
      event: "ready",
      pid: process.pid,
      port: server.port,
      tcpPort: tcp?.port ?? null,
      costRounds: args.costRounds,
      ...(args.steadyHeap ? { steadyHeap: heapError === null } : {}),
      ...(heapError ? { steadyHeapError: heapError } : {}),
      ...(cluster.isWorker ? { worker: cluster.worker?.id } : {}),
    }),
  );
  // Either side closing (lifetime, signal) closes the other.
  const why = await Promise.race([server.closed, ...(tcp ? [tcp.closed] : [])]);
  await Promise.all([server.close(), tcp?.close()]);
  process.off("SIGTERM", stop);
  process.off("SIGINT", stop);
  log(
    JSON.stringify({
      event: "closed",
      why,
      served: server.served(),
      ignored: server.ignored(),
      ...(tcp ? { tcp: tcp.stats() } : {}),
    }),
  );
}

/**
 * The server as a process: this process serves (`runPacketServer`), or with `workers` > 1 it
 * forks that many workers that serve the same ports and waits for them. SIGTERM/SIGINT stop the
 * workers; each also stops at its max lifetime, and one whose parent dies exits (node:cluster
 * exits a worker when its IPC channel closes). A worker that exits is not replaced.
 */
export async function runServeProcess(
  args: ServeArgs,
  log = (line: string) => process.stdout.write(`${line}\n`),
): Promise<void> {
  const workers = args.workers ?? 1;
  if (cluster.isWorker) {
    await runPacketServer(args, log);
    // the IPC channel to the parent would keep this process alive
    process.disconnect?.();
    return;
  }
  if (workers <= 1) return runPacketServer(args, log);
  const forked = Array.from({ length: workers }, () => cluster.fork());
  const stop = () => {
    for (const w of forked) if (!w.isDead()) w.process.kill("SIGTERM");
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  await Promise.all(forked.map((w) => new Promise((r) => w.once("exit", r))));
  process.off("SIGTERM", stop);
  process.off("SIGINT", stop);
  log(JSON.stringify({ event: "closed", workers }));
}

const intArg = (v: string | undefined, field: string, dflt?: number): number => {
  if (v === undefined && dflt !== undefined) return dflt;
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < 0) {
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `'${field}' must be an integer >= 0: current value is ${v}`,
    );
  }
  return n;
};

export function parseServeArgv(argv: string[]): ServeArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string" },
      "tcp-port": { type: "string" },
      host: { type: "string" },
      "cost-rounds": { type: "string" },
      workers: { type: "string" },
      "max-lifetime-ms": { type: "string" },
      "weir-tag": { type: "string" },
      "steady-heap": { type: "boolean" },
    },
    strict: true,
  });
  const out: ServeArgs = {
    port: intArg(values.port, "port"),
    costRounds: intArg(values["cost-rounds"], "cost-rounds", 600),
    maxLifetimeMs: intArg(values["max-lifetime-ms"], "max-lifetime-ms", 3_600_000),
  };
  if (values.host !== undefined) out.host = values.host;
  if (values["steady-heap"]) out.steadyHeap = true;
  if (values.workers !== undefined) {
    out.workers = intArg(values.workers, "workers");
    if (out.workers < 1 || out.workers > 64)
      throw new WeirError(
        ErrorCodes.CONFIG_INVALID,
        `'workers' must be an integer within 1..64: current value is ${values.workers}`,
      );
  }
  if (values["tcp-port"] !== undefined)
    out.tcpPort = values["tcp-port"] === "off" ? null : intArg(values["tcp-port"], "tcp-port");
  return out;
}
