// `weir` command line. Each command lives in src/cli/commands/<name>.ts and exports
// `register(program)`. Errors with a WeirError code print as one line, no stack, exit 2.
import { Command, CommanderError } from "commander";
import { isWeirError } from "../core/errors.ts";
import { commands } from "./commands/index.ts";

const program = new Command();
program
  .name("weir")
  .description(
    "Partition manager for Linux: CPU follows the network traffic each partition serves.",
  )
  .addHelpText(
    "after",
    [
      "",
      "How it decides:",
      "Every cycle (default 100 ms) weir reads each partition's packet counters and CPU use,",
      "estimates its velocity (packets served per CPU-second), and gives it the CPU its",
      "offered traffic needs (offered packets/s / velocity, plus headroom). Demand above what",
      "a partition uses is believed only when congestion confirms it (throttling or drops).",
      "Every partition first gets its guarantee (min); the rest is shared tier by tier in",
      "importance order, by weight, never above max. Changes are smoothed, small ones are",
      "ignored (dead-band), shrinking is rate-limited, and a cgroup value is written only",
      "when it changes.",
      "",
      "Start with `weir demo` (as root: real namespaces, veths and cgroups on this host).",
    ].join("\n"),
  )
  .version("0.1.0")
  .showHelpAfterError()
  // commander's own usage errors (an unknown option, a missing -c) exit 2 like a bad option's
  // value, not commander's 1: the subcommands inherit this (they are added after it)
  .exitOverride();

for (const register of commands) register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (isWeirError(err)) {
    process.stderr.write(`weir: ${err.code}: ${err.message}\n`);
    process.exit(2);
  }
  // commander has printed its message (and the help); --help and --version end with 0
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  throw err;
}
