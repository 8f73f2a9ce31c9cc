// GET /api/events: one server-sent `cycle` event per cycle record, with a replay of what the
// client has not seen (?since=<cycle> or Last-Event-ID), a keep-alive comment, a cap on open
// streams, and a bound on how far a slow reader may fall behind.
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { CycleRecord } from "../core/model.ts";
import type { ManagerView } from "../manager/view.ts";
import { cyclesToReturn, type recordCaches } from "./records.ts";
import { badRequest } from "./requests.ts";

export const DEFAULT_MAX_EVENT_CLIENTS = 32;

/** The handler of GET /api/events; it counts its open streams itself. */
export function eventsHandler(
  view: ManagerView,
  cache: ReturnType<typeof recordCaches>,
  opts: { keepAliveMs: number; maxEventClients: number },
): (c: Context) => Response | Promise<Response> {
  const { keepAliveMs, maxEventClients } = opts;
  let eventClients = 0;
  return (c) => {
    // Replay from the ring what the client has not seen: after ?since=<cycle> (a page that
    // loaded /api/cycles first), or after Last-Event-ID (an EventSource reconnecting).
    const since = c.req.query("since");
    if (since !== undefined && !/^\d+$/.test(since)) {
      return badRequest(c, [
        {
          field: "since",
          rule: "cycle-number",
          message: "must be a cycle number (an integer >= 0)",
          value: since,
        },
      ]);
    }
    // An EventSource that reconnects asks again for the URL it was opened with (the dashboard's
    // carries the ?since of its first connection) and sends the id of the last event it got:
    // that is where it is, so Last-Event-ID comes first when it is a cycle number.
    const lastEventIdHeader = c.req.header("Last-Event-ID")?.trim();
    const resumeAfter =
      lastEventIdHeader !== undefined && /^\d+$/.test(lastEventIdHeader)
        ? Number(lastEventIdHeader)
        : Number(since ?? Number.NaN);
    if (eventClients >= maxEventClients) {
      c.header("Retry-After", "10");
      return c.json(
        {
          error: "too many event clients",
          message: `at most ${maxEventClients} /api/events streams are served at once`,
        },
        503,
      );
    }
    eventClients++;
    let counted = true;
    const release = () => {
      if (counted) eventClients--;
      counted = false;
    };
    return streamSSE(c, async (stream) => {
      try {
        let chain: Promise<void> = Promise.resolve();
        let pending = 0;
        // the replay's records not yet written: bounded by the ring and the /api/cycles
        // budget, they are all sent and do not count against a live reader's 64
        let replaying = 0;
        const send = (record: CycleRecord, replay = false) => {
          // A reader slower than the cycle loses intermediate records (the stream is
          // level-based like the cycle); it never makes the manager buffer without bound.
          if (stream.aborted || (!replay && pending - replaying > 64)) return;
          pending++;
          if (replay) replaying++;
          chain = chain
            // encoded once per record, the same bytes for every client
            .then(() => stream.write(cache.frame.get(record)))
            .then(
              () => {},
              () => {},
            )
            .finally(() => {
              pending--;
              if (replay) replaying--;
            });
        };
        if (Number.isFinite(resumeAfter)) {
          // within the same budget as /api/cycles. A cycle this run has not reached is an
          // earlier run's (cycles count from 1 in each run: a page open across a restart
          // reconnects with the old run's last id): all of this run's records, not none of them.
          const all = view.recentRecords();
          const newest = all.length > 0 ? all[all.length - 1]!.cycle : 0;
          const after = resumeAfter > newest ? 0 : resumeAfter;
          const records = all.filter((r) => r.cycle > after);
          const n = cyclesToReturn(records, records.length);
          for (let i = records.length - n; i < records.length; i++) send(records[i]!, true);
        }
        const unsubscribe = view.subscribe((record) => send(record));
        const keepAlive = setInterval(() => {
          chain = chain
            .then(() => stream.write(": keep-alive\n\n"))
            .then(
              () => {},
              () => {},
            );
        }, keepAliveMs);
        await new Promise<void>((resolve) => {
          stream.onAbort(() => {
            unsubscribe();
            clearInterval(keepAlive);
            release();
            resolve();
          });
          if (stream.aborted) {
            unsubscribe();
            clearInterval(keepAlive);
            release();
            resolve();
          }
        });
      } finally {
        release();
      }
    });
  };
}
