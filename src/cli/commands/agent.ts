// `weir agent`: the in-partition agent (reports its own counters, applies directives to itself).
import type { Command } from "commander";
import { ErrorCodes, WeirError } from "../../core/errors.ts";

interface AgentCliOptions {
  index: string;
  keyFile?: string;
  transport: string;
  manager?: string;
  bind?: string;
  shmPath: string;
  ivshmem?: boolean;
  intervalMs: string;
  cgroup: string;
  interfaces?: string;
  applyCgroup?: string;
  cpuOnline?: boolean;
  hook?: string;
  hookTimeoutMs: string;
  maxSkewMs: string;
  sysfs: string;
  procfs: string;
  cgroupfs: string;
  count?: string;
  durationMs?: string;
  json?: boolean;
}

const invalid = (field: string, rule: string, value: unknown) =>
  new WeirError(
    ErrorCodes.CONFIG_INVALID,
    `'${field}' ${rule}: current value is ${JSON.stringify(value)}`,
  );

function positiveInt(field: string, v: string, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw invalid(field, `must be an integer >= ${min}`, v);
  return n;
}

export function parseHostPort(field: string, v: string): { address: string; port: number } {
  const i = v.lastIndexOf(":");
  const address = i > 0 ? v.slice(0, i) : "";
  const port = Number(v.slice(i + 1));
  if (address === "" || !Number.isInteger(port) || port < 0 || port > 65535)
    throw invalid(field, "must be host:port", v);
  return { address, port };
}

export function register(program: Command): void {
  program
    .command("agent")
    .description("Run inside a partition: report its own counters, apply directives to itself.")
    .addHelpText(
      "after",
      [
        "",
        "The agent reads its partition's counters from inside: packets of its network",
        "namespace's interfaces (rx = offered, tx = served, plus interface and UDP socket",
        "drops) and CPU used by its own cgroup, or the whole machine's /proc/stat in a VM",
        "(--cgroup none). Every interval it computes its velocity (packets served per",
        "CPU-second since the last report) and sends one signed report (HMAC-SHA256 with the",
        "partition's key, strictly increasing sequence, timestamp) over UDP or into its slot",
        "of the shared-memory table. Wire formats: docs/wire-formats.md.",
        "",
        "Each new directive (CPU cap, weight, CPU count) is applied to the partition itself:",
        "its delegated cgroup (--apply-cgroup), CPUs online/offline (--cpu-online, for VMs),",
        "and --hook, run with WEIR_CPU_MILLIS, WEIR_CPU_COUNT, WEIR_WEIGHT and",
        "WEIR_PARTITION_INDEX in its environment so an application can resize its thread",
        "pool. An unchanged directive is not applied again.",
        "",
        "The key is read from --key-file (hex) or the WEIR_AGENT_KEY environment variable.",
      ].join("\n"),
    )
    .requiredOption("--index <n>", "this partition's index (wire id and slot number)")
    .option("--key-file <file>", "file with the partition's key in hex (else $WEIR_AGENT_KEY)")
    .option("--transport <udp|shm>", "how to reach the manager", "udp")
    .option("--manager <host:port>", "manager's report address (udp)")
    .option("--bind <host:port>", "local address for reports and directives (udp)", "0.0.0.0:0")
    .option(
      "--shm-path <path>",
      "the manager's slot directory (its transport.shm.path), or this partition's slot itself, e.g. /proc/self/fd/3 (shm)",
      "/dev/shm/weir-slots",
    )
    .option(
      "--ivshmem",
      "in a QEMU guest: the slot is the ivshmem device's region (PCI 1af4:1110, resource2)",
    )
    .option("--interval-ms <ms>", "report period", "100")
    .option(
      "--cgroup <path|auto|none>",
      "cgroup whose CPU use counts (auto: this process's own; none: /proc/stat)",
      "auto",
    )
    .option("--interfaces <names>", "comma-separated interfaces to count (default: all but lo)")
    .option("--apply-cgroup <path>", "delegated cgroup to write each directive to")
    .option("--cpu-online", "bring CPUs online/offline to match each directive's CPU count")
    .option("--hook <command>", "command to run (sh -c) when the allocation changes")
    .option("--hook-timeout-ms <ms>", "kill a hook run after this long", "10000")
    .option(
      "--max-skew-ms <ms>",
      "refuse a directive delayed by more than this (measured against the last one; clocks are never compared)",
      "5000",
    )
    .option("--sysfs <dir>", "sysfs root", "/sys")
    .option("--procfs <dir>", "procfs root", "/proc")
    .option("--cgroupfs <dir>", "cgroup root", "/sys/fs/cgroup")
    .option("--count <n>", "stop after this many reports")
    .option("--duration-ms <ms>", "stop after this long")
    .option("--json", "log JSON lines (default when stderr is not a terminal)")
    .action(async (o: AgentCliOptions) => {
      const { readFileSync } = await import("node:fs");
      const { parseKeyHex } = await import("../../transport/codec.ts");
      const { Agent } = await import("../../agent/agent.ts");
      const { CpuOnlineController, HookRunner } = await import("../../agent/apply.ts");
      const { OwnCounters, ownCgroupPath } = await import("../../agent/counters.ts");
      const { createLogger } = await import("../../manager/log.ts");

      const index = positiveInt("index", o.index, 0);
      const intervalMs = positiveInt("interval-ms", o.intervalMs);
      const maxSkewMs = positiveInt("max-skew-ms", o.maxSkewMs);
      let keyHex: string | undefined;
      try {
        keyHex = o.keyFile ? readFileSync(o.keyFile, "utf8") : process.env.WEIR_AGENT_KEY;
      } catch (cause) {
        throw new WeirError(ErrorCodes.CONFIG_NOT_FOUND, `cannot read key file ${o.keyFile}`, {
          cause,
        });
      }
      if (keyHex === undefined) throw invalid("key-file", "or $WEIR_AGENT_KEY is required", null);
      let key: Uint8Array;
      try {
        key = parseKeyHex(keyHex);
      } catch (e) {
        throw invalid("key", (e as Error).message, "<redacted>");
      }

      let channel: import("../../transport/source.ts").AgentChannel;
      const verify = { maxAgeMs: maxSkewMs, maxFutureMs: maxSkewMs };
      if (o.transport === "udp") {
        if (!o.manager) throw invalid("manager", "is required with --transport udp", null);
        const { DatagramAgentChannel } = await import("../../transport/datagram.ts");
        channel = await DatagramAgentChannel.open({
          partitionIndex: index,
          key,
          manager: parseHostPort("manager", o.manager),
          bind: parseHostPort("bind", o.bind ?? "0.0.0.0:0"),
          ...verify,
        });
      } else if (o.transport === "shm") {
        const { ShmAgentChannel } = await import("../../transport/shm-source.ts");
        if (o.ivshmem) {
          const { findIvshmemRegion } = await import("../../agent/ivshmem.ts");
          o.shmPath = findIvshmemRegion(o.sysfs);
        }
        channel = new ShmAgentChannel({ path: o.shmPath, partitionIndex: index, key, ...verify });
      } else throw invalid("transport", 'must be "udp" or "shm"', o.transport);

      const cgroup =
        o.cgroup === "none"
          ? null
          : o.cgroup === "auto"
            ? (ownCgroupPath(o.procfs) ?? null)
            : o.cgroup;
      const counters = new OwnCounters({
        procfs: o.procfs,
        cgroupfs: o.cgroupfs,
        pid: process.pid,
        cgroup,
        interfaces: o.interfaces?.split(",").map((name) => ({ name, offered: "rx", served: "tx" })),
      });
      const logger = createLogger("info", { json: o.json ?? false });
      let actuator: import("../../actuators/types.ts").PartitionActuator | undefined;
      if (o.applyCgroup) {
        const { CgroupBackend } = await import("../../actuators/cgroup.ts");
        actuator = new CgroupBackend({ cgroupfs: o.cgroupfs }).open({
          partition: `partition-${index}`,
          cgroup: o.applyCgroup,
        });
      }
      const hook = o.hook
        ? new HookRunner(o.hook, {
            timeoutMs: positiveInt("hook-timeout-ms", o.hookTimeoutMs),
            onResult: (r) =>
              logger.info(
                { hook: { exitCode: r.exitCode, timedOut: r.timedOut, ms: r.durationMs } },
                `hook ran for ${r.allocation.cpuMillis}m / ${r.allocation.cpuCount} CPUs`,
              ),
          })
        : undefined;
      const limit = o.count ? positiveInt("count", o.count) : Number.POSITIVE_INFINITY;
      const ac = new AbortController();
      const agent = new Agent({
        partitionIndex: index,
        key,
        channel,
        counters,
        intervalMs,
        actuator,
        cpuOnline: o.cpuOnline ? new CpuOnlineController(o.sysfs) : undefined,
        hook,
        onEvent: (e) => {
          if (e.kind === "report") {
            logger.debug({ report: e.report }, "report");
            if (agent.stats().reports >= limit) ac.abort();
          } else if (e.kind === "directive" && e.changed)
            logger.info(
              { directive: e.directive, written: e.written },
              `directive: ${e.directive.cpuMillis}m, weight ${e.directive.weight}, ${e.directive.cpuCount} CPUs`,
            );
          else if (e.kind === "cpus")
            logger.info({ written: e.written }, `CPUs brought back to ${e.cpuCount}`);
          else if (e.kind === "error") logger.warn({ error: e }, `${e.where}: ${e.message}`);
        },
      });
      logger.info(
        `agent ${index}: ${o.transport} ${o.transport === "udp" ? o.manager : o.shmPath}, every ${intervalMs} ms, cpu from ${cgroup === null ? "/proc/stat" : `cgroup ${cgroup}`}`,
      );
      process.once("SIGTERM", () => ac.abort());
      process.once("SIGINT", () => ac.abort());
      const timer = o.durationMs
        ? setTimeout(() => ac.abort(), positiveInt("duration-ms", o.durationMs))
        : undefined;
      await agent.run(ac.signal);
      clearTimeout(timer);
      await hook?.idle();
      const s = agent.stats();
      logger.info(
        { stats: s },
        `agent ${index} stopped: ${s.reports} reports, ${s.directives} directives`,
      );
      agent.close();
    });
}
