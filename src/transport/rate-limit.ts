// Token buckets in front of the datagram verifier. A source (address:port) gets its own
// bucket only once a message from it verified (`trust`); every other source draws from one
// shared bucket for unknown sources. So a flood from any number of spoofed addresses gets at
// most the unknown budget through to the MAC check (and holds no memory per address), while
// the agents already known keep their own rate. Known sources are bounded too (the least
// recently seen is forgotten first); only a verified message can add one.

import { stepFreeNowMs } from "../core/clock.ts";

export interface TokenBucketOptions {
  /** Tokens added per second to each known source's bucket. */
  ratePerSec: number;
  /** Bucket size: how many messages a known source may send at once after being quiet. */
  burst: number;
  /** Tokens added per second to the one bucket all unknown sources share (default ratePerSec). */
  unknownRatePerSec?: number;
  /** Size of the unknown sources' bucket (default burst). */
  unknownBurst?: number;
  /** Known sources remembered at once (default 4096). */
  maxSources?: number;
  /** Default: the step-free clock (a wall-clock step back would stop every refill). */
  now?: () => number;
}

interface Bucket {
  tokens: number;
  atMs: number;
  /** When it was last drawn from, in takes (for forgetting the least recently seen). */
  seen: number;
}

function refill(b: Bucket, now: number, ratePerMs: number, burst: number): void {
  const elapsed = now - b.atMs;
  if (elapsed > 0) {
    b.tokens = Math.min(burst, b.tokens + elapsed * ratePerMs);
    b.atMs = now;
  }
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly unknown: Bucket;
  private readonly ratePerMs: number;
  private readonly burst: number;
  private readonly unknownRatePerMs: number;
  private readonly unknownBurst: number;
  private readonly maxSources: number;
  private readonly now: () => number;
  private takes = 0;

  constructor(o: TokenBucketOptions) {
    if (!(o.ratePerSec > 0))
      throw new RangeError(`ratePerSec must be > 0: current value is ${o.ratePerSec}`);
    if (!(o.burst >= 1)) throw new RangeError(`burst must be >= 1: current value is ${o.burst}`);
    const unknownRate = o.unknownRatePerSec ?? o.ratePerSec;
    const unknownBurst = o.unknownBurst ?? o.burst;
    if (!(unknownRate > 0))
      throw new RangeError(`unknownRatePerSec must be > 0: current value is ${unknownRate}`);
    if (!(unknownBurst >= 1))
      throw new RangeError(`unknownBurst must be >= 1: current value is ${unknownBurst}`);
    this.ratePerMs = o.ratePerSec / 1000;
    this.burst = o.burst;
    this.unknownRatePerMs = unknownRate / 1000;
    this.unknownBurst = unknownBurst;
    this.maxSources = o.maxSources ?? 4096;
    this.now = o.now ?? stepFreeNowMs;
    this.unknown = { tokens: unknownBurst, atMs: this.now(), seen: 0 };
  }

  /**
   * Take one token for `source`: from its own bucket when it is known, else from the unknown
   * sources' shared bucket. False when that bucket is empty (the message is dropped).
   * `nowMs`: the caller's reading of the clock, when it has one.
   */
  take(source: string, nowMs: number = this.now()): boolean {
    const b = this.buckets.get(source);
    if (b === undefined) {
      refill(this.unknown, nowMs, this.unknownRatePerMs, this.unknownBurst);
      if (this.unknown.tokens < 1) return false;
      this.unknown.tokens -= 1;
      return true;
    }
    b.seen = ++this.takes;
    refill(b, nowMs, this.ratePerMs, this.burst);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /**
   * `source` sent a message that verified: from now on it has its own bucket, which starts
   * full less the message just taken (as if it had had its bucket all along).
   */
  trust(source: string): void {
    if (this.buckets.has(source)) return;
    if (this.buckets.size >= this.maxSources) {
      // Only a verified message from a new source gets here: a linear search for the least
      // recently seen is cheaper than keeping an order on every take.
      let oldest: string | undefined;
      let oldestSeen = Number.POSITIVE_INFINITY;
      for (const [k, v] of this.buckets)
        if (v.seen < oldestSeen) {
          oldest = k;
          oldestSeen = v.seen;
        }
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    this.buckets.set(source, { tokens: this.burst - 1, atMs: this.now(), seen: ++this.takes });
  }

  /** Known sources (each with its own bucket). */
  get sources(): number {
    return this.buckets.size;
  }
}
