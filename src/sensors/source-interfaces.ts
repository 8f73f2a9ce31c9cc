// Counter source `interfaces`: host-side interfaces' counters (the host end of a veth:
// offered = tx, served = rx), summed over the partition's `interfaces`. Read from the host's
// `<procfs>/net/dev`, one read per cycle shared by every partition (host-net-dev.ts); from each
// interface's sysfs statistics (three files an interface) where that file is not there.
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { CounterSource } from "./counter-source.ts";
import { type HostNetDev, openHostNetDev } from "./host-net-dev.ts";
import { assertInterfaceName, HeldInterfaceCounters } from "./packets.ts";
import type { InterfaceSpec, PacketCounter, PacketCounts, SampleRound } from "./types.ts";

export const interfacesSource: CounterSource = {
  name: "interfaces",
  description: "host-side interfaces' counters (offered = tx, served = rx by default)",
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
    for (const i of ctx.spec.interfaces) assertInterfaceName(i.name);
    const netDev = openHostNetDev(ctx.roots.procfs);
    if (netDev === null) return sysfsCounter(ctx.roots.sysfs, ctx.spec.interfaces);
    try {
      const counter = netDevCounter(netDev, ctx.spec.interfaces);
      counter.read(); // INTERFACE_GONE now, as opening the sysfs files would
      return counter;
    } catch (e) {
      netDev.close();
      throw e;
    }
  },
};

/**
 * The interfaces' counters from `/proc/net/dev`'s table: the same counters as sysfs
 * (`tx_packets`, `tx_dropped`, `rx_packets`), except that its receive "drop" column is
 * rx_dropped + rx_missed_errors (net/core/net-procfs.c); veth and lo have no missed errors.
 */
function netDevCounter(netDev: HostNetDev, specs: readonly InterfaceSpec[]): PacketCounter {
  return {
    read(round?: SampleRound): PacketCounts {
      const table = netDev.read(round);
      let offered = 0;
      let served = 0;
      let dropped = 0;
      for (const spec of specs) {
        const c = table.get(spec.name);
        if (c === undefined)
          throw new WeirError(
            ErrorCodes.INTERFACE_GONE,
            `interface ${spec.name} is gone (not in ${netDev.path})`,
            { retryable: true },
          );
        const drops = spec.offered === "rx" ? c.rx_dropped : c.tx_dropped;
        offered += (spec.offered === "rx" ? c.rx_packets : c.tx_packets) + drops;
        served += spec.served === "rx" ? c.rx_packets : c.tx_packets;
        dropped += drops;
      }
      return { offeredPackets: offered, servedPackets: served, droppedPackets: dropped };
    },
    close: () => netDev.close(),
  };
}

function sysfsCounter(sysfs: string, specs: readonly InterfaceSpec[]): PacketCounter {
  const held: HeldInterfaceCounters[] = [];
  try {
    for (const i of specs) held.push(new HeldInterfaceCounters(sysfs, i));
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
}
