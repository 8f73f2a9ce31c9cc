// What the open-loop UDP generator (load.ts) and the closed-loop TCP generator (tcp-load.ts)
// share: latency histograms and their summary, named phases, the generator's own CPU cost,
// and the error an option that breaks a rule gets.
import {
  build,
  decodeFromCompressedBase64,
  encodeIntoCompressedBase64,
  type Histogram,
} from "hdr-histogram-js";
import { ErrorCodes, WeirError } from "../core/errors.ts";

/** A named window of the run (by send time) to summarise separately, e.g. a demo phase. */
export interface LoadPhase {
  name: string;
  fromMs: number;
  toMs: number;
  /**
   * Also hand back the phase's latency histogram (`histogramB64`), so that runs can be pooled:
   * a percentile of several runs together is not any function of each run's percentiles.
   */
  keepHistogram?: boolean;
}

export interface LatencySummary {
  count: number;
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  p999Ms: number | null;
  maxMs: number | null;
  meanMs: number | null;
}

export interface GeneratorCost {
  wallMs: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  /** CPU the generator's process used over the run, in cores (0.05 = 5 % of one CPU). */
  cpuCores: number;
  /** Generator CPU per 1,000 packets sent (each with its reply received), microseconds. */
  cpuMicrosPer1000Packets: number | null;
}

export const US_PER_MS = 1000;
/** A latency histogram in microseconds, 1 µs to 120 s (UDP and TCP loads alike). */
export const newHistogram = (digits: 1 | 2 | 3): Histogram =>
  build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: digits,
  });

/**
 * A latency histogram (µs) as text: HdrHistogram's compressed base64 encoding, which its other
 * implementations (Java, Go, C, Python) also read.
 */
export const histogramToB64 = (h: Histogram): string => encodeIntoCompressedBase64(h);

/**
 * Several runs' latency histograms (from histogramToB64) as one: the latencies of every
 * request of every run together. A percentile of it is the pooled percentile (null: no value).
 */
export function pooledLatency(encoded: readonly string[]): LatencySummary {
  const total = newHistogram(3);
  try {
    for (const e of encoded) {
      const h = decodeFromCompressedBase64(e);
      try {
        total.add(h);
      } finally {
        h.destroy();
      }
    }
    return summarize(total);
  } finally {
    total.destroy();
  }
}

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0) {
    return {
      count: 0,
      p50Ms: null,
      p90Ms: null,
      p99Ms: null,
      p999Ms: null,
      maxMs: null,
      meanMs: null,
    };
  }
  const ms = (us: number) => Math.round(us) / US_PER_MS;
  return {
    count: h.totalCount,
    p50Ms: ms(h.getValueAtPercentile(50)),
    p90Ms: ms(h.getValueAtPercentile(90)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    p999Ms: ms(h.getValueAtPercentile(99.9)),
    maxMs: ms(h.maxValue),
    meanMs: ms(h.mean),
  };
}

/**
 * The generator's CPU cost over a run: `cpu` is `process.cpuUsage(before)` over `wallMs`,
 * `packets` the packets (or requests) sent, each with its reply received.
 */
export function generatorCost(
  cpu: NodeJS.CpuUsage,
  wallMs: number,
  packets: number,
): GeneratorCost {
  const cpuMicros = cpu.user + cpu.system;
  return {
    wallMs: Math.round(wallMs),
    cpuUserMs: Math.round(cpu.user / 1000),
    cpuSystemMs: Math.round(cpu.system / 1000),
    cpuCores: Math.round((cpuMicros / 1000 / wallMs) * 1000) / 1000,
    cpuMicrosPer1000Packets: packets === 0 ? null : Math.round((cpuMicros / packets) * 1000),
  };
}

/** The error of an option that breaks a rule: names the field, the rule and the value. */
export function badOption(field: string, rule: string, value: unknown): never {
  throw new WeirError(
    ErrorCodes.CONFIG_INVALID,
    `'${field}' ${rule}: current value is ${JSON.stringify(value)}`,
  );
}
