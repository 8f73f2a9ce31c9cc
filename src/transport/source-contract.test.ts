// The ReportSource contract, once per transport.
import { rmSync } from "node:fs";
import { reportSourceContract } from "./contract.ts";
import { DatagramAgentChannel, DatagramReportSource } from "./datagram.ts";
import { ShmAgentChannel, ShmReportSource } from "./shm-source.ts";

let n = 0;

reportSourceContract({
  name: "shared-memory slots",
  open: async ({ keys, now, staleAfterMs }) => {
    const path = `/dev/shm/weirt-${process.pid}-contract-${n++}`;
    const source = new ShmReportSource({ path, keys, now, staleAfterMs });
    return {
      source,
      agent: async (index, key) => new ShmAgentChannel({ path, partitionIndex: index, key, now }),
      cleanup: () => rmSync(path, { force: true, recursive: true }),
      endpointPerPartition: true,
    };
  },
});

// the manager's UDP end both ways it reads its socket (udp-batch.ts, node:dgram)
for (const receive of ["batch", "dgram"] as const)
  reportSourceContract({
    name: `UDP datagrams (${receive})`,
    open: async ({ keys, now, staleAfterMs }) => {
      const source = await DatagramReportSource.open({ keys, now, staleAfterMs, receive });
      if (source.backend() !== receive)
        throw new Error(`asked for ${receive}, got ${source.backend()}`);
      return {
        source,
        agent: (index, key) =>
          DatagramAgentChannel.open({
            partitionIndex: index,
            key,
            manager: source.address(),
            bind: { address: "127.0.0.1" },
            now,
          }),
        cleanup: () => {},
      };
    },
  });
