// Counter source `pid`: a network namespace seen through one of its processes. Its UDP socket
// drops (`/proc/<pid>/net/snmp` InErrors) always count as dropped; its `/proc/<pid>/net/dev`
// (offered = rx, served = tx, every interface but lo) counts too unless the partition also
// reads host-side `interfaces` (they see the same packets), or `netnsInterfaces` names them.
import type { CounterSource } from "./counter-source.ts";
import { HeldNamespaceCounters } from "./packets.ts";
import { udpSocketDrops } from "./parse.ts";
import type { PacketCounter, PacketCounts } from "./types.ts";

export const pidSource: CounterSource = {
  name: "pid",
  description:
    "a process's network namespace: /proc/<pid>/net/dev (offered = rx, served = tx) and its UDP socket drops",
  feed: "host",
  checkSpec: (spec) =>
    spec.pid !== undefined
      ? []
      : [
          {
            path: ["pid"],
            message: "is required by the pid counter source (rule: pid-source): got nothing",
          },
        ],
  open(ctx): PacketCounter {
    const { spec } = ctx;
    const interfaces =
      spec.netnsInterfaces !== undefined
        ? spec.netnsInterfaces
        : spec.interfaces.length === 0
          ? undefined
          : null;
    const ns = new HeldNamespaceCounters(ctx.roots.procfs, spec.pid ?? 0, interfaces);
    return {
      read(): PacketCounts {
        const p = ns.readPackets();
        return { ...p, droppedPackets: p.droppedPackets + udpSocketDrops(ns.readUdp(false)) };
      },
      close: () => ns.close(),
    };
  },
};
