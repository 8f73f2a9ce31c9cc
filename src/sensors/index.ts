// The sensors' public surface (see README.md).
export { cpuCounterFiles, HeldCgroupCpuCounters, readCgroupCpuCounters } from "./cgroup.ts";
export {
  type CpuDelayOptions,
  type CpuDelayPaths,
  type CpuDelaySource,
  cpuDelayPaths,
  defaultCpuDelaySources,
  HeldCpuDelay,
} from "./cpu-delay.ts";
export { onlineCpusFile, type PartitionCpus, readPartitionCpus } from "./cpuset.ts";
export { HeldFile, readOnce } from "./held-file.ts";
export { HeldHostCpu, hostCpuFromSamples, parseProcStatCpu } from "./host-cpu.ts";
export {
  HeldInterfaceCounters,
  HeldNamespaceCounters,
  interfaceCounterPath,
  type PacketCounts,
  packetCountsOf,
  readInterfaceCounters,
  readNetDev,
  readSnmpUdp,
} from "./packets.ts";
export type { CpuCounters, InterfaceCounters, PressureTotals, UdpCounters } from "./parse.ts";
export { openPartitionSensor, type PartitionSensorOptions } from "./partition.ts";
export { type ThroughputOptions, throughputFromSamples } from "./throughput.ts";
export * from "./types.ts";
