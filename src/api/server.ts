// Serve a Hono app on a real socket with @hono/node-server. Bound to 127.0.0.1 unless told
// otherwise: the API shows the whole host's partitions and is meant for this machine.
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { Hono } from "hono";
import { DEFAULT_API_PORT } from "./port.ts";

export interface ServeOptions {
  /** Default "127.0.0.1". */
  host?: string;
  /** Default 9470; 0 picks a free port (read it from the result). */
  port?: number;
  /** Open connections at most (SSE streams count); one more is closed as it arrives. Default 128. */
  maxConnections?: number;
}

export interface RunningApi {
  host: string;
  /** The port actually bound (useful with port 0). */
  port: number;
  /** Base URL, e.g. http://127.0.0.1:9470 */
  url: string;
  /** Stop accepting connections, end open ones (SSE streams included) and wait for the close. */
  close(): Promise<void>;
}

export const DEFAULT_MAX_CONNECTIONS = 128;
/** A client has this long to send its headers and body (an SSE stream's request is short too). */
export const REQUEST_TIMEOUT_MS = 10_000;
/** Largest request header block (Node's default is 16 KiB). */
export const MAX_HEADER_BYTES = 8 * 1024;

/** Parse "host:port" as written in config (api.listen). */
export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(":");
  return { host: listen.slice(0, i), port: Number(listen.slice(i + 1)) };
}

export function serveApi(app: Hono, opts: ServeOptions = {}): Promise<RunningApi> {
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port ?? DEFAULT_API_PORT;
  return new Promise((resolve, reject) => {
    const server = serve(
      {
        fetch: app.fetch,
        hostname: host,
        port,
        serverOptions: {
          maxHeaderSize: MAX_HEADER_BYTES,
          requestTimeout: REQUEST_TIMEOUT_MS,
          headersTimeout: REQUEST_TIMEOUT_MS,
        },
      },
      (info: AddressInfo) => {
        server.off("error", reject);
        const url = `http://${info.family === "IPv6" ? `[${info.address}]` : info.address}:${info.port}`;
        resolve({
          host: info.address,
          port: info.port,
          url,
          close: () =>
            new Promise<void>((done, fail) => {
              server.close((err) => (err ? fail(err) : done()));
              // SSE streams never end by themselves: end every open connection.
              if ("closeAllConnections" in server) server.closeAllConnections();
            }),
        });
      },
    );
    server.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    server.once("error", reject);
  });
}
