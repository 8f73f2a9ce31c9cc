// The one contract every packet counter source must meet (as src/actuators/contract.ts is for
// actuators): the same vitest tests run against each source in sources.ts, on real counters
// (test/e2e/counter-sources.e2e.test.ts: a veth into a namespace the test makes, a process's
// /proc/<pid>, an agent's signed reports, a cgroup's eBPF programs). A fixture supplies how
// to open the source on a fresh target, how to make exact traffic for it, and how to make
// the target vanish.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isWeirError } from "../core/errors.ts";
import type { CounterSource } from "./counter-source.ts";
import type { PacketCounter, PacketCounts } from "./types.ts";

export interface CounterSourceFixture {
  /** Open the source on the fixture's target, as the partition sensor would. */
  open(): PacketCounter;
  /**
   * Make exactly `offered` packets arrive for the partition and `served` packets leave it
   * (nothing dropped); resolves once the kernel (or the agent's report) has them.
   */
  traffic(offered: number, served: number): Promise<void>;
  /**
   * Make the target go away (delete the interface, end the process, ...); after it, `read()`
   * (or `open()`) throws a WeirError with `goneCode`. Absent where nothing can vanish under
   * the source (an agent's last report stays its last report; staleness is the manager's).
   */
  vanish?: () => Promise<void>;
  goneCode?: string;
  /** Remove everything the fixture made. */
  teardown(): Promise<void>;
}

const delta = (a: PacketCounts, b: PacketCounts): PacketCounts => ({
  offeredPackets: b.offeredPackets - a.offeredPackets,
  servedPackets: b.servedPackets - a.servedPackets,
  droppedPackets: b.droppedPackets - a.droppedPackets,
});

export function counterSourceContract(
  source: CounterSource,
  makeFixture: () => Promise<CounterSourceFixture>,
): void {
  describe(`counter source contract: ${source.name}`, () => {
    let fx: CounterSourceFixture;
    let counter: PacketCounter;

    beforeAll(async () => {
      fx = await makeFixture();
      counter = fx.open();
    });
    afterAll(async () => {
      counter?.close();
      await fx?.teardown();
    });

    it("reads cumulative counts: non-negative integers, unchanged while nothing flows", () => {
      const a = counter.read();
      const b = counter.read();
      for (const v of Object.values(a)) {
        expect(Number.isSafeInteger(v)).toBe(true);
        expect(v).toBeGreaterThanOrEqual(0);
      }
      expect(b).toEqual(a);
    });

    it("counts exactly the packets that arrive (offered) and leave (served)", async () => {
      const before = counter.read();
      await fx.traffic(37, 0);
      const mid = counter.read();
      expect(delta(before, mid)).toEqual({
        offeredPackets: 37,
        servedPackets: 0,
        droppedPackets: 0,
      });
      await fx.traffic(0, 23);
      const after = counter.read();
      expect(delta(mid, after)).toEqual({
        offeredPackets: 0,
        servedPackets: 23,
        droppedPackets: 0,
      });
      await fx.traffic(11, 5);
      expect(delta(after, counter.read())).toEqual({
        offeredPackets: 11,
        servedPackets: 5,
        droppedPackets: 0,
      });
    });

    it("a second opening counts the same traffic as the first", async () => {
      const other = fx.open();
      try {
        const a0 = counter.read();
        const b0 = other.read();
        await fx.traffic(5, 3);
        expect(delta(b0, other.read())).toEqual(delta(a0, counter.read()));
        expect(delta(a0, counter.read())).toEqual({
          offeredPackets: 5,
          servedPackets: 3,
          droppedPackets: 0,
        });
      } finally {
        other.close();
      }
    });

    it("close is idempotent", () => {
      const other = fx.open();
      other.close();
      expect(() => other.close()).not.toThrow();
    });

    it("throws its declared gone error once the target vanishes (or declares none)", async () => {
      expect(fx.vanish === undefined).toBe(fx.goneCode === undefined);
      if (!fx.vanish) return;
      await fx.vanish();
      let code: string | null = null;
      try {
        counter.read();
      } catch (e) {
        code = isWeirError(e) ? e.code : "not a WeirError";
      }
      if (code === null)
        try {
          fx.open().close();
        } catch (e) {
          code = isWeirError(e) ? e.code : "not a WeirError";
        }
      expect(code).toBe(fx.goneCode);
    });
  });
}
