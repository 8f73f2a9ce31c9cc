// The list of `weir` commands. Add one line per command file.
import type { Command } from "commander";
import { register as agent } from "./agent.ts";
import { register as bench } from "./bench.ts";
import { register as demo } from "./demo.ts";
import { register as goal } from "./goal.ts";
import { register as load } from "./load.ts";
import { register as run } from "./run.ts";
import { register as status } from "./status.ts";
import { register as testbed } from "./testbed.ts";
import { register as validate } from "./validate.ts";

export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [
  demo,
  run,
  validate,
  status,
  goal,
  testbed,
  load,
  bench,
  agent,
];
