// The host's CPU, sampled once per cycle beside the partitions, for the record (is CPU left
// idle, or does it flow to someone?). Never fails the cycle: unreadable means null.
import type { HostCpuUse } from "../core/model.ts";
import type { HostCpuSample, HostCpuSensor } from "../sensors/types.ts";

/** How to read the host's CPU: a sensor to open (held /proc/stat, the simulator's machine) and the rate function. */
export interface HostCpuWiring {
  open: () => HostCpuSensor;
  use: (prev: HostCpuSample, next: HostCpuSample) => HostCpuUse | null;
  /** After a failure, how long to wait before opening the sensor again (default 5000 ms). */
  retryMs?: number;
}

export class HostCpuSampler {
  private sensor: HostCpuSensor | null = null;
  private prev: HostCpuSample | null = null;
  private failedAtMs: number | null = null;
  /** The last failure's message (for logs and tests); null while reads succeed. */
  lastError: string | null = null;

  constructor(private readonly wiring: HostCpuWiring) {}

  /** The host's CPU since the previous call; null on the first call and whenever it cannot be read. */
  sample(nowMs: number): HostCpuUse | null {
    if (!this.sensor) {
      if (this.failedAtMs !== null && nowMs - this.failedAtMs < (this.wiring.retryMs ?? 5000))
        return null;
      try {
        this.sensor = this.wiring.open();
      } catch (err) {
        this.failed(err, nowMs);
        return null;
      }
    }
    try {
      const next = this.sensor.read(nowMs);
      const use = this.prev ? this.wiring.use(this.prev, next) : null;
      this.prev = next;
      this.failedAtMs = null;
      this.lastError = null;
      return use;
    } catch (err) {
      this.failed(err, nowMs);
      return null;
    }
  }

  close(): void {
    this.sensor?.close();
    this.sensor = null;
    this.prev = null;
  }

  private failed(err: unknown, nowMs: number): void {
    this.close();
    this.failedAtMs = nowMs;
    this.lastError = err instanceof Error ? err.message : String(err);
  }
}
