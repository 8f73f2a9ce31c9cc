// The counter sources `partitions[].packets` can name, in one list. A new source is one file
// exporting a CounterSource (counter-source.ts) plus one line here; config validation, the
// partition sensor and the contract suite (contract.ts) all read this list.
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { CounterSource } from "./counter-source.ts";
import { agentSource } from "./source-agent.ts";
import { bpfSource } from "./source-bpf.ts";
import { interfacesSource } from "./source-interfaces.ts";
import { pidSource } from "./source-pid.ts";
import type { PacketSourceChoice, SensorSpec } from "./types.ts";

/** Every registered source, in the order they are read and listed. */
export const COUNTER_SOURCES: readonly CounterSource[] = [
  interfacesSource,
  pidSource,
  agentSource,
  bpfSource,
];

/** The source of that name; an unknown name is a config error listing the known ones. */
export function counterSource(name: string): CounterSource {
  const s = COUNTER_SOURCES.find((x) => x.name === name);
  if (!s)
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `packets: must name a counter source (one of ${counterSourceNames().join(", ")}) (rule: counter-source): got ${JSON.stringify(name)}`,
    );
  return s;
}

export const counterSourceNames = (): string[] => COUNTER_SOURCES.map((s) => s.name);

/**
 * The sources a partition reads when its config names none (what weir did before `packets`
 * existed): host-side `interfaces` when it has some, plus `pid` when it has a pid.
 */
export function defaultPacketSources(spec: SensorSpec): PacketSourceChoice[] {
  const out: PacketSourceChoice[] = [];
  if (spec.interfaces.length > 0) out.push({ name: interfacesSource.name });
  if (spec.pid !== undefined) out.push({ name: pidSource.name });
  return out;
}
