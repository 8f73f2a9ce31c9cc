// The shared drift of CPU cost per packet: on these VMs the same work costs 2,600-4,700
// packets per CPU-second depending on the host's clock speed (docs/measured-facts.md), and the change is the
// same for every partition. Modelled as a mean-reverting random walk (Ornstein-Uhlenbeck)
// of a cost multiplier, clamped to [1 - amplitude, 1 + amplitude].
import { createRng, type Rng } from "./rng.ts";

export interface DriftOptions {
  /** Largest relative change of cost: 0.3 = ±30 %. 0 turns drift off. */
  amplitude: number;
  /** How fast the multiplier returns toward 1, per second. */
  reversionPerSec: number;
  /** Random-walk strength, per square-root second. */
  volatilityPerSqrtSec: number;
  /** The multiplier is re-drawn every `stepMs`. */
  stepMs: number;
  seed: number;
}

export const defaultDrift: DriftOptions = {
  amplitude: 0.3,
  reversionPerSec: 0.2,
  volatilityPerSqrtSec: 0.1,
  stepMs: 100,
  seed: 7,
};

/** The cost multiplier over virtual time; query with non-decreasing times. */
export class CostDrift {
  private readonly opts: DriftOptions;
  private readonly rng: Rng;
  private x = 0;
  private nextStepMs = 0;
  private current = 1;

  constructor(opts: Partial<DriftOptions> = {}) {
    this.opts = { ...defaultDrift, ...opts };
    this.rng = createRng(this.opts.seed);
  }

  /** Multiplier of every partition's CPU cost per packet at `tMs` (1 = nominal). */
  factorAt(tMs: number): number {
    const { amplitude, reversionPerSec, volatilityPerSqrtSec, stepMs } = this.opts;
    if (amplitude === 0) return 1;
    while (tMs >= this.nextStepMs) {
      const dt = stepMs / 1000;
      this.x +=
        -reversionPerSec * this.x * dt + volatilityPerSqrtSec * Math.sqrt(dt) * this.rng.normal();
      this.x = Math.max(-amplitude, Math.min(amplitude, this.x));
      this.current = 1 + this.x;
      this.nextStepMs += stepMs;
    }
    return this.current;
  }
}
