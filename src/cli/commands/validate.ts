// `weir validate --config F` and `weir schema`: check a config without touching anything.
import os from "node:os";
import type { Command } from "commander";
import {
  capacityCpuMillis,
  checkCapacity,
  configJsonSchema,
  partitionSpecs,
} from "../../manager/config.ts";
import { loadConfigFile } from "../../manager/load-config.ts";

export function register(program: Command): void {
  program
    .command("validate")
    .description("Check a config file: every mistake is named with its field, rule and value.")
    .requiredOption("-c, --config <file>", "YAML config file")
    .option("--json", "print the effective config (defaults filled in) as JSON")
    .action((opts: { config: string; json?: boolean }) => {
      const cfg = loadConfigFile(opts.config);
      const capacity = capacityCpuMillis(cfg, os.availableParallelism());
      checkCapacity(cfg, capacity);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(cfg, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        `${opts.config}: valid. capacity ${capacity}m, cycle every ${cfg.intervalMs} ms\n`,
      );
      for (const s of partitionSpecs(cfg, capacity)) {
        process.stdout.write(
          `  ${s.id.padEnd(16)} ${s.kind.padEnd(8)} min ${s.minCpuMillis}m  max ${s.maxCpuMillis}m  weight ${s.weight}  importance ${s.importance}${s.goalPacketsPerSec ? `  goal ${s.goalPacketsPerSec} pps` : ""}\n`,
        );
      }
    });

  program
    .command("schema")
    .description("Print the config's JSON Schema (for editor completion: yaml-language-server).")
    .action(() => {
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    });
}
