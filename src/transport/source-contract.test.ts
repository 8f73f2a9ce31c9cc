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

reportSourceContract({
  name: "UDP datagrams",
  open: async ({ keys, now, staleAfterMs }) => {
    const source = await DatagramReportSource.open({ keys, now, staleAfterMs });
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
