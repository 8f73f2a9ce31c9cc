// Public API of the testbed: what `weir demo`, the e2e tests and the benchmarks use.
export {
  type AssignedAddress,
  allocateBlocks,
  blockAddresses,
  inTestNet,
  type PartitionAddresses,
} from "./addresses.ts";
export { detectTestbedLayout } from "./cgroups.ts";
export {
  type GeneratorCost,
  type LatencySummary,
  type LoadOptions,
  type LoadPhase,
  type LoadProgress,
  type LoadResult,
  type LoadTarget,
  type PhaseStats,
  probeServer,
  runLoad,
  type SecondStats,
  type TargetProgress,
  type TargetResult,
} from "./load.ts";
export { defaultStateFile } from "./names.ts";
export {
  describeSchedule,
  parseDurationMs,
  parseScheduleSpec,
  parseTrace,
  type RotatingLoad,
  rateAt,
  rotatingLoad,
  type Schedule,
  scheduleSchema,
  type TracePoint,
} from "./schedule.ts";
export {
  burnRounds,
  type PacketServer,
  type PacketServerOptions,
  startPacketServer,
} from "./server.ts";
export {
  type ResourceRecord,
  readState,
  type TestbedHog,
  type TestbedPartition,
  type TestbedState,
} from "./state.ts";
export {
  probeTcpServer,
  runTcpLoad,
  type TcpErrorCounts,
  type TcpGeneratorCost,
  type TcpLoadOptions,
  type TcpLoadProgress,
  type TcpLoadResult,
  type TcpLoadTarget,
  type TcpPhaseStats,
  type TcpSecondStats,
  TcpTargetAccount,
  type TcpTargetProgress,
  type TcpTargetResult,
} from "./tcp-load.ts";
export {
  encodeFrame,
  encodeRequestFrame,
  FRAME_HEADER_BYTES,
  FRAME_MAGIC,
  FrameReader,
} from "./tcp-protocol.ts";
export {
  startTcpServer,
  type TcpServer,
  type TcpServerOptions,
  type TcpServerStats,
} from "./tcp-server.ts";
export {
  type DownReport,
  type HogRequest,
  type PartitionRequest,
  type ResourceStatus,
  type TestbedOptions,
  type TestbedStatus,
  testbedDown,
  testbedStatus,
  testbedUp,
} from "./testbed.ts";
