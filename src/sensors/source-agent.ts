// Counter source `agent`: the packet counters the partition's own agent reports (signed
// datagrams or the shared-memory table, verified by src/transport; offered = rx, served = tx
// inside the partition). The manager reads an agent partition's whole report (its CPU too);
// this counter gives the same packet counts to whoever reads through the registry.
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { CounterSource } from "./counter-source.ts";
import type { PacketCounter, PacketCounts } from "./types.ts";

export const agentSource: CounterSource = {
  name: "agent",
  description: "the counters the partition's agent reports (needs agent.key and a transport)",
  feed: "agent",
  open(ctx): PacketCounter {
    const feed = ctx.agentReports;
    if (!feed)
      throw new WeirError(
        ErrorCodes.COUNTER_UNREADABLE,
        `partition ${ctx.partition}: the agent counter source has no report transport to read`,
      );
    return {
      read(): PacketCounts {
        const p = feed.latest(ctx.partition);
        if (!p)
          throw new WeirError(
            ErrorCodes.COUNTER_UNREADABLE,
            `partition ${ctx.partition}: its agent has sent no report yet`,
            { retryable: true },
          );
        return {
          offeredPackets: p.offeredPackets,
          servedPackets: p.servedPackets,
          droppedPackets: p.droppedPackets,
        };
      },
      close(): void {},
    };
  },
};
