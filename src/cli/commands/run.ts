// `weir run --config F [--dry-run] [--once] [--json]`: the partition manager.
import os from "node:os";
import type { Command } from "commander";
import type { CycleRecord } from "../../core/model.ts";

export function register(program: Command): void {
  program
    .command("run")
    .description("Run the partition manager on the partitions in the config.")
    .addHelpText(
      "after",
      [
        "",
        "Each cycle: read every partition's packet counters (offered = packets arriving,",
        "served = replies) and its cgroup's CPU use; velocity = served packets per CPU-second.",
        "Demand = offered / velocity + headroom. More than a partition uses is granted only when",
        "it is congested (throttled or dropping). Guarantees (min) first, then importance tiers,",
        "weights within a tier, never above max. Values are written only when they change.",
        "SIGTERM/SIGINT restore the values weir found (onShutdown: restore) or keep the last.",
        "SIGHUP reads the config file again: a config with a mistake is logged and the running one",
        "stays; a changed one restarts the manager in this process, keeping the values written and",
        "what weir found (a removed partition's cgroup gets its found values back, as at a restart).",
        "With discover: templates, every cgroup a template's pattern matches is a partition while",
        "it is there: the tree is looked at every discover.intervalMs, and a change restarts the",
        "manager the same way.",
      ].join("\n"),
    )
    .requiredOption("-c, --config <file>", "YAML config file (see `weir validate`, `weir schema`)")
    .option(
      "--dry-run",
      "decide but write nothing: each partition's backend is opened read-only and reports what it would write",
    )
    .option(
      "--once",
      "run two cycles (rates need two samples), print the last record, exit; what they wrote stays in force (with --dry-run nothing is written)",
    )
    .option(
      "--json",
      "logs (stderr) and each cycle's record (stdout) as JSON lines; without it logs are readable on a terminal, JSON lines otherwise, and only --once prints a record",
    )
    .action(async (opts: { config: string; dryRun?: boolean; once?: boolean; json?: boolean }) => {
      // SIGHUP from the first moment, not once the manager runs: node's default ends the process,
      // and a reload asked for while weir starts (a slow start on a loaded host) is made after it
      let hangupEarly = false;
      let hangup = () => {
        hangupEarly = true;
      };
      if (!opts.once) process.on("SIGHUP", () => hangup());
      // Loaded on use, so other commands (e.g. `weir testbed serve`) start fast. The config is
      // read and validated in a child process: the YAML parser and the schema library are not
      // loaded into the process that runs the manager (load-config-apart.ts).
      const { loadConfigFileApart } = await import("../../manager/load-config-apart.ts");
      const { createLogger } = await import("../../manager/log.ts");
      const { managerStarter } = await import("../../service/run.ts");
      const { buildManager, releaseKeptCounters } = await import("../../manager/wiring.ts");
      const { startDiscovering, startReloadingDiscovered } = await import(
        "../../service/discovery.ts"
      );
      const base = await loadConfigFileApart(opts.config);
      const logger = createLogger(base.log.level, { json: opts.json ?? false });
      const onlineCpus = os.availableParallelism();
      if (opts.once) {
        // the file's config with a partition for each cgroup its discover: templates find now
        const cfg = startDiscovering({ logger, onlineCpus }).expand(base);
        const { startCpusShortfalls } = await import("../../manager/cpus-check.ts");
        const wired = buildManager(cfg, { dryRun: opts.dryRun ?? false });
        const { manager } = wired;
        // what the start wrote back (a killed run's placement, a removed partition's cgroup)
        for (const note of [...wired.foundNotes, ...wired.cpusetNotes])
          process.stderr.write(`weir run: ${note.restored ? "" : "warning: "}${note.message}\n`);
        for (const w of startCpusShortfalls(cfg, wired))
          process.stderr.write(`weir run: warning: ${w.message}\n`);
        manager.runCycle();
        await new Promise((r) => setTimeout(r, cfg.intervalMs));
        const rec = manager.runCycle();
        manager.shutdown("keep"); // --once applies and leaves the values in force
        process.stdout.write(opts.json ? `${JSON.stringify(rec)}\n` : formatRecord(rec));
        return;
      }
      const ac = new AbortController();
      const stop = (sig: string) => {
        logger.info(`${sig}: stopping`);
        ac.abort();
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
      // one API server and one /metrics for every manager a reload or discover: starts
      const { createApiHost } = await import("../../service/api-host.ts");
      const host = createApiHost({ logger });
      // the file's config, with a partition for each cgroup its discover: templates find, at
      // start and whenever that changes (discovery.ts); SIGHUP reads the file again (reload.ts)
      const running = startReloadingDiscovered({
        base,
        onlineCpus,
        logger,
        signal: ac.signal,
        loadFile: () => loadConfigFileApart(opts.config),
        start: managerStarter({
          logger,
          dryRun: opts.dryRun ?? false,
          host,
          ...(opts.json
            ? { onRecord: (r: CycleRecord) => process.stdout.write(`${JSON.stringify(r)}\n`) }
            : {}),
        }),
      });
      // SIGHUP (`systemctl reload`, `kill -HUP`): read the config file again (service/reload.ts)
      hangup = () => {
        logger.info(`SIGHUP: reloading ${opts.config}`);
        running.reload();
      };
      if (hangupEarly) hangup();
      try {
        await running.done;
      } finally {
        await host.close();
        // a reload whose next manager never started leaves nothing attached
        releaseKeptCounters();
      }
      logger.flush?.();
    });
}

export function formatRecord(r: CycleRecord): string {
  const lines = [
    `cycle ${r.cycle}: capacity ${r.capacityCpuMillis}m, took ${r.timingsMs.total.toFixed(2)} ms`,
  ];
  for (const p of r.partitions) {
    const t = p.throughput;
    lines.push(
      `  ${p.id.padEnd(14)} ${p.status.padEnd(6)} ` +
        (t
          ? `offered ${t.offeredPacketsPerSec.toFixed(0)} pps, served ${t.servedPacketsPerSec.toFixed(0)} pps, drops ${t.droppedPacketsPerSec.toFixed(0)}/s, cpu ${t.cpuCores.toFixed(2)}, `
          : "no data, ") +
        (p.directive ? `allocation ${p.directive.cpuMillis}m` : "no directive") +
        (p.written.length ? ` (wrote ${p.written.join(", ")})` : "") +
        (p.error ? ` [${p.error.code}: ${p.error.message}]` : ""),
    );
    if (p.decision) lines.push(`      why: ${p.decision.why}`);
  }
  return `${lines.join("\n")}\n`;
}
