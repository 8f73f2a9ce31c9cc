import { describe, expect, it } from "vitest";
import { procSelfCpuTicks, procSelfMemoryMb } from "./overhead.ts";

describe("overhead: reading /proc/self", () => {
  it("takes utime + stime (fields 14, 15) even when the command name has spaces and parentheses", () => {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    const stat = "4242 (node (weir) x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 137 42 0 0 20 0 11 0";
    expect(procSelfCpuTicks(stat)).toBe(137 + 42);
  });

  it("reads VmRSS and VmHWM in MB", () => {
    const status = "Name:\tnode\nVmHWM:\t  122880 kB\nVmRSS:\t  102400 kB\nThreads:\t11\n";
    expect(procSelfMemoryMb(status)).toEqual({ rssMb: 100, peakRssMb: 120 });
  });

  it("reads this process's own files", () => {
    expect(procSelfCpuTicks()).toBeGreaterThanOrEqual(0);
    expect(procSelfMemoryMb().rssMb).toBeGreaterThan(1);
  });
});
