// The sensors' public surface (see README.md).
export {
  type CgroupLayout,
  cpuCounterFiles,
  detectCgroupLayout,
  HeldCgroupCpuCounters,
  normalizeCgroupPath,
  readCgroupCpuCounters,
} from "./cgroup.ts";
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
export type { CpuCounters, InterfaceCounters, UdpCounters } from "./parse.ts";
export { openPartitionSensor } from "./partition.ts";
export { type ThroughputOptions, throughputFromSamples } from "./throughput.ts";
export * from "./types.ts";
