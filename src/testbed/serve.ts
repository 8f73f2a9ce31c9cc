// Running the packet server as a process: argument parsing and signal handling, shared by
// `weir testbed serve` and serve-entry.ts (the light entry the testbed spawns).
import { parseArgs } from "node:util";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { startPacketServer } from "./server.ts";
import { startTcpServer } from "./tcp-server.ts";

export interface ServeArgs {
  /** UDP port. */
  port: number;
  /** TCP port of the closed-loop server (tcp-server.ts); default the UDP port's number; null = no TCP. */
  tcpPort?: number | null;
  host?: string;
  costRounds: number;
  /** Threads burning the UDP server's rounds (server.ts `workers`); absent: 1. */
  workers?: number;
  maxLifetimeMs: number;
}

/** Run the server until SIGTERM/SIGINT or its max lifetime; logs one JSON line at start and end. */
export async function runPacketServer(
  args: ServeArgs,
  log = (line: string) => process.stdout.write(`${line}\n`),
): Promise<void> {
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  // the TCP server answers on one thread; `workers` is the UDP server's
  const { tcpPort: tcpPortArg, workers, ...udpArgs } = args;
  const tcpPort = tcpPortArg === undefined ? args.port : tcpPortArg;
  // TCP listens first: once the UDP side answers a probe (testbedUp's readiness check),
  // the TCP side is listening too.
  const tcp =
    tcpPort === null
      ? null
      : await startTcpServer({ ...udpArgs, port: tcpPort, signal: ac.signal });
  let server: Awaited<ReturnType<typeof startPacketServer>>;
  try {
    server = await startPacketServer({
      ...udpArgs,
      ...(workers === undefined ? {} : { workers }),
      signal: ac.signal,
    });
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
      workers: args.workers ?? 1,
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
    },
    strict: true,
  });
  const out: ServeArgs = {
    port: intArg(values.port, "port"),
    costRounds: intArg(values["cost-rounds"], "cost-rounds", 600),
    maxLifetimeMs: intArg(values["max-lifetime-ms"], "max-lifetime-ms", 3_600_000),
  };
  if (values.host !== undefined) out.host = values.host;
  if (values.workers !== undefined) out.workers = intArg(values.workers, "workers");
  if (values["tcp-port"] !== undefined)
    out.tcpPort = values["tcp-port"] === "off" ? null : intArg(values["tcp-port"], "tcp-port");
  return out;
}
