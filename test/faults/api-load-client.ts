// The load generator of api-load.faults.test.ts, in its own process (forked with an IPC
// channel, then lowered to nice 19 by the test) so that what the test measures is weir serving
// the load, not the test's own process decoding it on the same two CPUs. On each message
// {base, loadMs, sseClients, loops} it hammers the API for loadMs — sseClients /api/events
// streams and, when loops is set, /api/cycles at its largest limit and /api/partitions in loops,
// at most 10,000 requests a loop — cuts what is still under way when loadMs has passed (counted
// as cut, not as failed), closes every connection, and answers with what it saw and the CPU
// time it used. The test runs the streams and the loops in two such processes: in one, the
// streams' bytes (megabytes a cycle) filled the event loop, and at nice 19 beside a busy CPU
// the loops' requests then got no turn to finish in a window.

import { setMaxListeners } from "node:events";
import { Agent, get } from "node:http";

export interface LoadRequest {
  base: string;
  loadMs: number;
  sseClients: number;
  /** Run the /api/cycles and /api/partitions request loops too. */
  loops: boolean;
}

export interface LoadCounts {
  /**
   * ended: accepted streams that ended before the window did (the server closed them);
   * maxOpen: the most accepted streams this client had open at once.
   */
  sse: {
    accepted: number;
    refused: number;
    other: number;
    cut: number;
    bytes: number;
    ended: number;
    maxOpen: number;
  };
  /** The first error of a request or stream that failed (not one the window's end cut), if any. */
  firstError: string | null;
  /**
   * ok: answers read whole in the window; started: answers whose status line (200) arrived in
   * it, read whole or not — weir answered, whether or not a client starved of CPU (nice 19
   * beside busy CPUs) could read ~10 MB before the window's end cut it.
   */
  cycles: { ok: number; started: number; other: number; cut: number; bytes: number };
  parts: { ok: number; started: number; other: number; cut: number; bytes: number };
  /** CPU time (user + system) this process used in the window, ms. */
  cpuMs: number;
}

/**
 * GET url and count its body's bytes without keeping them: node:http's parser (the loops'
 * answers are ~10 MB; fetch's web streams and arrayBuffer cost the client ~45 ms a megabyte at
 * nice 19 beside a busy CPU, so two answers came back in 36 s of load). Rejects on abort.
 */
function getCounted(
  url: string,
  signal: AbortSignal,
  agent: Agent,
  onStatus: (status: number) => void,
): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { signal, agent }, (res) => {
      onStatus(res.statusCode ?? 0);
      let bytes = 0;
      res.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.on("error", reject);
    });
    req.on("error", reject);
  });
}

export async function hammer({
  base,
  loadMs,
  sseClients,
  loops,
}: LoadRequest): Promise<LoadCounts> {
  const t0 = Date.now();
  const cpu0 = process.cpuUsage();
  const agent = new Agent({ keepAlive: true }); // the loops' connections, closed at the end
  const ac = new AbortController();
  setMaxListeners(sseClients + 2, ac.signal); // one listener per open request, by design
  const timer = setTimeout(() => ac.abort(), loadMs);
  const sse = { accepted: 0, refused: 0, other: 0, cut: 0, bytes: 0, ended: 0, maxOpen: 0 };
  let open = 0;
  let firstError: string | null = null;
  const failed = (what: string, e: unknown) => {
    const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : "";
    firstError ??= `${what}: ${e instanceof Error ? e.message : String(e)}${cause}`;
  };
  // The streams' connections are this window's own and are not kept alive: a refused stream's
  // socket pooled by fetch's global dispatcher was reused in the next window just as the server
  // closed it for idleness (its keep-alive timeout, 5 s, about one window apart), and 18
  // requests failed with ECONNRESET before any answer in one soak beside two busy loops.
  const streamAgent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  const stream = () =>
    new Promise<void>((resolve) => {
      let answered = false; // accepted or refused: the end of the window then ends it, not a cut
      let counted = false; // counted as open
      let settled = false;
      const settle = (error?: unknown) => {
        if (settled) return;
        settled = true;
        if (error !== undefined && !(answered && ac.signal.aborted)) {
          if (ac.signal.aborted) sse.cut++;
          else {
            sse.other++;
            failed(answered ? "/api/events stream" : "/api/events", error);
          }
        }
        if (counted) open--;
        resolve();
      };
      const req = get(`${base}/api/events`, { signal: ac.signal, agent: streamAgent }, (res) => {
        answered = true;
        res.on("error", settle);
        if (res.statusCode === 503) {
          sse.refused++;
          res.resume();
          res.on("end", () => settle());
          return;
        }
        if (res.statusCode !== 200) {
          failed("/api/events", `status ${res.statusCode}`);
          sse.other++;
          res.resume();
          res.on("end", () => settle());
          return;
        }
        sse.accepted++;
        open++;
        counted = true;
        sse.maxOpen = Math.max(sse.maxOpen, open);
        // bytes are counted, not decoded
        res.on("data", (chunk: Buffer) => {
          sse.bytes += chunk.length;
        });
        res.on("end", () => {
          if (!ac.signal.aborted) sse.ended++;
          settle();
        });
        res.on("close", () => settle());
      });
      req.on("error", settle);
    });
  const loop = async (url: string, counts: LoadCounts["cycles"]) => {
    for (let n = 0; n < 10_000 && Date.now() - t0 < loadMs; n++) {
      try {
        const { status, bytes } = await getCounted(url, ac.signal, agent, (s) => {
          if (s === 200) counts.started++;
        });
        if (status === 200) counts.ok++;
        else {
          counts.other++;
          failed(url, `status ${status}`);
        }
        counts.bytes += bytes;
      } catch (e) {
        if (ac.signal.aborted) counts.cut++;
        else {
          counts.other++;
          failed(url, e);
        }
      }
    }
  };
  const cycles = { ok: 0, started: 0, other: 0, cut: 0, bytes: 0 };
  const parts = { ok: 0, started: 0, other: 0, cut: 0, bytes: 0 };
  await Promise.all([
    ...Array.from({ length: sseClients }, stream),
    ...(loops
      ? [loop(`${base}/api/cycles?limit=1000`, cycles), loop(`${base}/api/partitions`, parts)]
      : []),
  ]);
  clearTimeout(timer);
  agent.destroy();
  streamAgent.destroy();
  const cpu = process.cpuUsage(cpu0);
  return { sse, cycles, parts, firstError, cpuMs: (cpu.user + cpu.system) / 1000 };
}

if (process.send) {
  process.on("message", (m: LoadRequest | "exit") => {
    if (m === "exit") process.disconnect();
    else void hammer(m).then((counts) => process.send?.(counts));
  });
}
