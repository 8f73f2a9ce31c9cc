// The list of `weir` commands. Add one line per command file.
import type { Command } from "commander";
import { register as status } from "./status.ts";

export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [status];
