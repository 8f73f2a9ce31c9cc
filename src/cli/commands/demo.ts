// `weir demo`: the main job on an embedded default scenario (see src/demo/).
import { existsSync } from "node:fs";
import type { Command } from "commander";
import { ErrorCodes, WeirError } from "../../core/errors.ts";
import { detectTestbedLayout } from "../../testbed/cgroups.ts";
import { port, positive } from "../options.ts";

/** Why real partitions cannot be made here, or null when they can. */
export function realModeUnavailable(): string | null {
  if (typeof process.getuid === "function" && process.getuid() !== 0) return "not running as root";
  if (!["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].some((p) => existsSync(p)))
    return "the ip command (iproute2) is not installed";
  try {
    detectTestbedLayout();
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

/** What commander parses from `weir demo`'s options. */
interface DemoCliOptions {
  duration: number;
  json?: boolean;
  partitions: number;
  hog: boolean;
  highPps: number;
  lowPps: number;
  port: number;
  simulate?: boolean;
  hostNetwork?: boolean;
  vm?: boolean;
}

export function register(program: Command): void {
  program
    .command("demo")
    .description(
      "Watch weir move CPU to where the traffic is: 3 partitions, a batch hog, traffic that moves.",
    )
    .addHelpText(
      "after",
      [
        "",
        "As root: sets up real partitions on this host (network namespace + veth pair in",
        "198.18.0.0/15 + cgroup + a UDP packet server whose requests cost CPU), a batch hog that",
        "wants every CPU, and runs the manager on them while load moves from partition to",
        "partition. Shows a live view and the dashboard URL, then a summary per phase: served /",
        "offered, p99 latency, and how long weir took to follow each shift. Everything it made is",
        "removed at the end (also on Ctrl-C). Without root it runs the same scenario on simulated",
        "partitions and says so.",
        "",
        "With --host-network the partitions have no namespace or veth: each packet server listens",
        "on a port of 127.0.0.1 inside its own cgroup, and weir counts its packets with eBPF",
        "programs on that cgroup (packets: bpf); they are detached and nothing stays pinned.",
        "",
        "Work conservation: the live view, the dashboard and the summary show the host's idle CPU",
        "(/proc/stat) and the batch hog's CPU used as a share of the capacity, so CPU that nobody",
        "gets while the hog wants it is visible.",
      ].join("\n"),
    )
    .option("-d, --duration <seconds>", "length of the scenario", positive("duration"), 60)
    .option("--json", "print only the summary, as JSON (schema in README)")
    .option("--partitions <n>", "network partitions (1-8)", positive("partitions"), 3)
    .option("--no-hog", "leave out the batch hog")
    .option("--high-pps <n>", "offered rate of the hot partition", positive("high-pps"), 2500)
    .option("--low-pps <n>", "offered rate of the others", positive("low-pps"), 250)
    .option(
      "--port <n>",
      "HTTP API / dashboard port on 127.0.0.1 (0: any free port)",
      port("port"),
      9470,
    )
    .option("--simulate", "use simulated partitions even when real ones are possible")
    .option(
      "--host-network",
      "real partitions on the host network (no netns, no veth): servers on 127.0.0.1, each in its cgroup, counted by eBPF",
    )
    .option(
      "--vm",
      "QEMU guests as the partitions (root, qemu-system-x86): 2 guests (--partitions) + a batch hog; default 90 s, rates sized from probes of the guests (the hot one needs a second vCPU)",
    )
    .action(async (opts: DemoCliOptions) => {
      if (opts.partitions > 8 || !Number.isInteger(opts.partitions))
        throw new WeirError(
          ErrorCodes.CONFIG_INVALID,
          `--partitions must be an integer 1-8: got ${opts.partitions}`,
        );
      if (opts.vm && opts.hostNetwork)
        throw new WeirError(
          ErrorCodes.CONFIG_INVALID,
          "--vm and --host-network are two kinds of partition: give one of them",
        );
      if (opts.vm) {
        await vmDemo(opts, program);
        return;
      }
      const { runRealDemo } = await import("../../demo/real.ts");
      const { runSimulatedDemo } = await import("../../demo/simulated.ts");
      const { formatSummary } = await import("../../demo/scenario.ts");
      const ac = new AbortController();
      let signals = 0;
      const onSignal = () => {
        signals++;
        if (signals > 1) process.exit(130);
        process.stderr.write(
          "\nstopping: cleaning up what the demo made (Ctrl-C again to quit at once)\n",
        );
        ac.abort();
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      const why = opts.simulate ? "--simulate was given" : realModeUnavailable();
      const output = opts.json ? "none" : process.stdout.isTTY ? "live" : "lines";
      const write = (t: string) => process.stdout.write(t);
      if (why && !opts.json)
        write(
          `SIMULATED partitions: ${why}. The scenario runs on weir's simulator with the real manager and policy.\n`,
        );
      const demoOpts = {
        durationMs: opts.duration * 1000,
        partitions: opts.partitions,
        hog: opts.hog,
        highPps: opts.highPps,
        lowPps: opts.lowPps,
        hostNetwork: opts.hostNetwork === true,
        apiPort: opts.port,
        output,
        signal: ac.signal,
        write,
      } as const;
      const summary = why ? await runSimulatedDemo(demoOpts) : await runRealDemo(demoOpts);
      process.stdout.write(
        opts.json ? `${JSON.stringify(summary, null, 2)}\n` : `\n${formatSummary(summary)}`,
      );
      if (ac.signal.aborted) process.exitCode = 130;
    });
}

/**
 * `weir demo --vm` (src/demo/vm.ts). The defaults fit a TCG guest (~18x slower than the host):
 * unless given, the duration is 90 s, 2 guests, and the rates sized from a probe: what the
 * guests measure they serve per vCPU-second (the hot rate needs more than one vCPU).
 */
async function vmDemo(opts: DemoCliOptions, program: Command): Promise<void> {
  const why = realModeUnavailable();
  if (why) throw new WeirError(ErrorCodes.NOT_ROOT, `weir demo --vm needs real partitions: ${why}`);
  if (!existsSync("/usr/bin/qemu-system-x86_64"))
    throw new WeirError(
      ErrorCodes.TESTBED,
      "weir demo --vm needs qemu-system-x86_64 (apt-get install qemu-system-x86 busybox-static cpio kmod)",
    );
  const cmd = program.commands.find((c) => c.name() === "demo");
  const given = (name: string) => cmd?.getOptionValueSource(name) === "cli";
  const { runVmDemo } = await import("../../demo/vm.ts");
  const { formatVmSummary } = await import("../../demo/vm-summary.ts");
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const say = opts.json ? () => {} : (l: string) => process.stdout.write(`${l}\n`);
  const summary = await runVmDemo({
    durationMs: (given("duration") ? opts.duration : 90) * 1000,
    guests: given("partitions") ? opts.partitions : 2,
    hog: opts.hog,
    // unless given, sized from what the guests serve per vCPU-second (src/demo/vm-rates.ts)
    highPps: given("highPps") ? opts.highPps : undefined,
    lowPps: given("lowPps") ? opts.lowPps : undefined,
    signal: ac.signal,
    say,
  });
  process.stdout.write(
    opts.json ? `${JSON.stringify(summary, null, 2)}\n` : `\n${formatVmSummary(summary)}`,
  );
  if (!summary.teardown.clean) process.exitCode = 1;
  if (ac.signal.aborted) process.exitCode = 130;
}
