// `weir validate --config F` and `weir schema`: check a config without touching anything.
import os from "node:os";
import type { Command } from "commander";

export function register(program: Command): void {
  program
    .command("validate")
    .description("Check a config file: every mistake is named with its field, rule and value.")
    .requiredOption("-c, --config <file>", "YAML config file")
    .option("--json", "print the effective config (defaults filled in) as JSON")
    .action(async (opts: { config: string; json?: boolean }) => {
      // loaded here, not at the top: the config's schema (zod) and YAML parser are what this
      // command needs and the command table must not load them for every command
      const { capacityCpuMillis, checkCapacity, checkManagedCpus, partitionSpecs } = await import(
        "../../manager/config-runtime.ts"
      );
      const { configCpusShortfalls } = await import("../../manager/cpus-check.ts");
      const { loadConfigFile } = await import("../../manager/load-config.ts");
      const { discoverNow } = await import("../../manager/discover.ts");
      const base = loadConfigFile(opts.config);
      checkManagedCpus(base, os.availableParallelism());
      const capacity = capacityCpuMillis(base, os.availableParallelism());
      checkCapacity(base, capacity);
      // with discover: the partitions its templates find on this host now, as `weir run` would
      const found = discoverNow(base, os.availableParallelism());
      const cfg = found.config;
      const foundAt = new Map(found.discovered.map((d) => [d.name, d]));
      const specs = partitionSpecs(cfg, capacity);
      // This host's CPUs against the capacity: warnings, never a failure. A cpuset a killed run
      // placed is judged as the state file says it was found, as `weir run` judges it.
      const warnings = configCpusShortfalls(cfg, specs, capacity);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(cfg, null, 2)}\n`);
        for (const w of warnings) process.stderr.write(`weir validate: warning: ${w.message}\n`);
        return;
      }
      process.stdout.write(
        `${opts.config}: valid. capacity ${capacity}m, cycle every ${cfg.intervalMs} ms\n`,
      );
      for (const s of specs) {
        const d = foundAt.get(s.id);
        process.stdout.write(
          `  ${s.id.padEnd(16)} ${s.kind.padEnd(8)} min ${s.minCpuMillis}m  max ${s.maxCpuMillis}m  weight ${s.weight}  importance ${s.importance}${s.goalPacketsPerSec ? `  goal ${s.goalPacketsPerSec} pps` : ""}${d ? `  found: ${d.cgroup} (discover.partitions[${d.template}])` : ""}\n`,
        );
      }
      if (cfg.discover !== undefined)
        process.stdout.write(
          `discover: ${cfg.discover.partitions.length} template(s), looked for every ${cfg.discover.intervalMs} ms; ${found.discovered.length} partition(s) found now\n`,
        );
      for (const r of found.refused)
        process.stdout.write(
          `not managed: ${r.cgroup} (discover.partitions[${r.template}]): ${r.reason}\n`,
        );
      for (const w of warnings) process.stdout.write(`warning: ${w.message}\n`);
    });

  program
    .command("schema")
    .description("Print the config's JSON Schema (for editor completion: yaml-language-server).")
    .action(async () => {
      const { configJsonSchema } = await import("../../manager/config.ts");
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    });
}
