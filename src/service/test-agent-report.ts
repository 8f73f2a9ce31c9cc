// A report an agent of the service tests sends (run.test.ts, reload.test.ts): its counters rise
// by 100 packets each way and 10 ms of CPU per sequence number. Not part of weir; only tests
// import it.
import { encodeReport } from "../transport/codec.ts";

/** Report `sequence` of partition `partitionIndex`, signed with `key`, timestamped now. */
export function risingReport(
  partitionIndex: number,
  sequence: number,
  key: Uint8Array,
): Uint8Array {
  return encodeReport(
    {
      partitionIndex,
      sequence,
      timestampMs: Date.now(),
      rxPackets: sequence * 100,
      txPackets: sequence * 100,
      droppedPackets: 0,
      cpuUsageNs: sequence * 1e7,
      nrPeriods: 0,
      nrThrottled: 0,
      throttledNs: 0,
      velocityPacketsPerCpuSec: null,
      velocityWindowMs: 50,
    },
    key,
  );
}
