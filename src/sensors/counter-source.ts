// What a packet counter source is: the shape every source file exports and sources.ts lists
// (node_exporter's registerCollector(name, factory); here a file exports one CounterSource).
import type { CounterSourceContext, OptionIssue, PacketCounter, SensorSpec } from "./types.ts";

export interface CounterSource {
  /** The name `partitions[].packets` uses. */
  name: string;
  /** One line for `weir --help`, the docs and error messages. */
  description: string;
  /**
   * `host`: weir reads it every cycle beside the cgroup's CPU counters. `agent`: the
   * partition's agent reports it (then the manager takes the agent's whole sample, CPU too).
   */
  feed: "host" | "agent";
  /**
   * Validate this source's options (the value under its name in `packets: {name: options}`;
   * null when given without). Returns the options `open` gets, or issues naming the field
   * (relative to the options), the rule and the value. Absent: the source takes no options.
   */
  parseOptions?(raw: unknown): { options: unknown } | { issues: OptionIssue[] };
  /** What the partition's other fields must give this source (e.g. a pid); issues name the field. */
  checkSpec?(spec: SensorSpec): OptionIssue[];
  /** Open the source for one partition. Throws WeirError (the source's codes) when it cannot. */
  open(ctx: CounterSourceContext): PacketCounter;
}
