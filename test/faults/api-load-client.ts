// The load generator of api-load.faults.test.ts, in its own process (forked with an IPC
// channel, then lowered to nice 19 by the test) so that what the test measures is weir serving
// the load, not the test's own process decoding it on the same two CPUs. On each message
// {base, loadMs, sseClients} it hammers the API for loadMs — sseClients /api/events streams,
// /api/cycles at its largest limit and /api/partitions in loops, at most 10,000 requests a
// loop — cuts what is still under way when loadMs has passed (counted as cut, not as failed),
// closes every connection, and answers with what it saw.

export interface LoadRequest {
  base: string;
  loadMs: number;
  sseClients: number;
}

export interface LoadCounts {
  sse: { accepted: number; refused: number; other: number; cut: number; bytes: number };
  cycles: { ok: number; other: number; cut: number; bytes: number };
  parts: { ok: number; other: number; cut: number; bytes: number };
}

export async function hammer({ base, loadMs, sseClients }: LoadRequest): Promise<LoadCounts> {
  const t0 = Date.now();
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), loadMs);
  const sse = { accepted: 0, refused: 0, other: 0, cut: 0, bytes: 0 };
  const stream = async () => {
    let answered = false; // accepted or refused: the end of the window then ends it, not a cut
    try {
      const res = await fetch(`${base}/api/events`, { signal: ac.signal });
      answered = true;
      if (res.status === 503) {
        sse.refused++;
        await res.body?.cancel();
        return;
      }
      if (res.status !== 200 || !res.body) {
        sse.other++;
        await res.body?.cancel();
        return;
      }
      sse.accepted++;
      // bytes are counted, not decoded
      const reader = res.body.getReader();
      while (Date.now() - t0 < loadMs) {
        const { done, value } = await reader.read();
        if (done) break;
        sse.bytes += value.byteLength;
      }
      await reader.cancel();
    } catch {
      if (answered && ac.signal.aborted) return;
      if (ac.signal.aborted) sse.cut++;
      else sse.other++;
    }
  };
  const loop = async (url: string, counts: LoadCounts["cycles"]) => {
    for (let n = 0; n < 10_000 && Date.now() - t0 < loadMs; n++) {
      try {
        const res = await fetch(url, { signal: ac.signal });
        const body = await res.arrayBuffer();
        if (res.ok) counts.ok++;
        else counts.other++;
        counts.bytes += body.byteLength;
      } catch {
        if (ac.signal.aborted) counts.cut++;
        else counts.other++;
      }
    }
  };
  const cycles = { ok: 0, other: 0, cut: 0, bytes: 0 };
  const parts = { ok: 0, other: 0, cut: 0, bytes: 0 };
  await Promise.all([
    ...Array.from({ length: sseClients }, stream),
    loop(`${base}/api/cycles?limit=1000`, cycles),
    loop(`${base}/api/partitions`, parts),
  ]);
  clearTimeout(timer);
  return { sse, cycles, parts };
}

if (process.send) {
  process.on("message", (m: LoadRequest | "exit") => {
    if (m === "exit") process.disconnect();
    else void hammer(m).then((counts) => process.send?.(counts));
  });
}
