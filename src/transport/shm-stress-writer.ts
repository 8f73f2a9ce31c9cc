// Child process for tests and benchmarks: rewrites one slot's report area as fast as it can
// for `durationMs`, cycling through pre-signed reports, then prints how many writes it made.
// Usage: node --import tsx shm-stress-writer.ts <slot dir> <slot> <keyHex> <durationMs>
import { encodeReport, parseKeyHex } from "./codec.ts";
import { AgentSlot } from "./shm.ts";

const [path, slotArg, keyHex, durationArg] = process.argv.slice(2);
if (path === undefined || slotArg === undefined || keyHex === undefined) {
  process.stderr.write("usage: shm-stress-writer <path> <slot> <keyHex> <durationMs>\n");
  process.exit(2);
}
const slot = Number(slotArg);
const key = parseKeyHex(keyHex);
const durationMs = Number(durationArg ?? 1000);
const start = Date.now();
// Distinct contents per report so a torn copy (half of one, half of another) fails the MAC.
const reports = Array.from({ length: 64 }, (_, i) =>
  encodeReport(
    {
      partitionIndex: slot,
      sequence: start * 1000 + i + 1,
      timestampMs: start,
      rxPackets: i * 1_000_003,
      txPackets: i * 999_983,
      droppedPackets: i,
      cpuUsageNs: i * 123_456_789,
      nrPeriods: i * 7,
      nrThrottled: i,
      throttledNs: i * 11,
      velocityPacketsPerCpuSec: i * 17.5,
      velocityWindowMs: 100,
    },
    key,
  ),
);
const s = new AgentSlot({ path, slot });
process.stdout.write("ready\n");
let writes = 0;
const end = start + durationMs;
while (Date.now() < end) {
  for (let k = 0; k < 1000; k++) s.writeReport(reports[(writes + k) & 63]!);
  writes += 1000;
}
s.close();
process.stdout.write(`${writes}\n`);
