// Per-source token buckets with a bounded number of sources (the least recently seen is
// forgotten first), so a flood from many spoofed addresses cannot grow memory.

export interface TokenBucketOptions {
  /** Tokens added per second to each source's bucket. */
  ratePerSec: number;
  /** Bucket size: how many messages a source may send at once after being quiet. */
  burst: number;
  /** Sources remembered at once (default 4096). */
  maxSources?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly ratePerMs: number;
  private readonly burst: number;
  private readonly maxSources: number;
  private readonly now: () => number;

  constructor(o: TokenBucketOptions) {
    if (!(o.ratePerSec > 0))
      throw new RangeError(`ratePerSec must be > 0: current value is ${o.ratePerSec}`);
    if (!(o.burst >= 1)) throw new RangeError(`burst must be >= 1: current value is ${o.burst}`);
    this.ratePerMs = o.ratePerSec / 1000;
    this.burst = o.burst;
    this.maxSources = o.maxSources ?? 4096;
    this.now = o.now ?? Date.now;
  }

  /** Take one token for `source`; false when its bucket is empty (the message is dropped). */
  take(source: string): boolean {
    const now = this.now();
    let b = this.buckets.get(source);
    if (b === undefined) {
      if (this.buckets.size >= this.maxSources) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
      b = { tokens: this.burst, atMs: now };
    } else {
      this.buckets.delete(source); // re-insert: Map order = least recently seen first
      const elapsed = now - b.atMs;
      if (elapsed > 0) {
        b.tokens = Math.min(this.burst, b.tokens + elapsed * this.ratePerMs);
        b.atMs = now;
      }
    }
    this.buckets.set(source, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  get sources(): number {
    return this.buckets.size;
  }
}
