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
      const cfg = loadConfigFile(opts.config);
      checkManagedCpus(cfg, os.availableParallelism());
      const capacity = capacityCpuMillis(cfg, os.availableParallelism());
      checkCapacity(cfg, capacity);
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
        process.stdout.write(
          `  ${s.id.padEnd(16)} ${s.kind.padEnd(8)} min ${s.minCpuMillis}m  max ${s.maxCpuMillis}m  weight ${s.weight}  importance ${s.importance}${s.goalPacketsPerSec ? `  goal ${s.goalPacketsPerSec} pps` : ""}\n`,
        );
      }
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
