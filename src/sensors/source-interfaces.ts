// Counter source `interfaces`: host-side interfaces' sysfs counters (the host end of a veth:
// offered = tx, served = rx), summed over the partition's `interfaces`.
import type { CounterSource } from "./counter-source.ts";
import { HeldInterfaceCounters } from "./packets.ts";
import type { PacketCounter, PacketCounts } from "./types.ts";

export const interfacesSource: CounterSource = {
  name: "interfaces",
  description: "host-side interfaces' sysfs counters (offered = tx, served = rx by default)",
  feed: "host",
  checkSpec: (spec) =>
    spec.interfaces.length > 0
      ? []
      : [
          {
            path: ["interfaces"],
            message: "must name at least one interface (rule: interfaces-source): got []",
          },
        ],
  open(ctx): PacketCounter {
    const held: HeldInterfaceCounters[] = [];
    try {
      for (const i of ctx.spec.interfaces) held.push(new HeldInterfaceCounters(ctx.roots.sysfs, i));
    } catch (e) {
      for (const h of held) h.close();
      throw e;
    }
    return {
      read(): PacketCounts {
        const sum: PacketCounts = { offeredPackets: 0, servedPackets: 0, droppedPackets: 0 };
        for (const h of held) {
          const p = h.read();
          sum.offeredPackets += p.offeredPackets;
          sum.servedPackets += p.servedPackets;
          sum.droppedPackets += p.droppedPackets;
        }
        return sum;
      },
      close(): void {
        for (const h of held) h.close();
      },
    };
  },
};
