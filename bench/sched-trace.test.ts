import { describe, expect, it } from "vitest";
import { analyseSchedTrace, type TaskClass } from "./sched-trace.ts";

// tids: 10 and 11 servers, 20 the hog, 30 the generator
const classOf = (tid: number): TaskClass =>
  tid === 10 || tid === 11 ? "server" : tid === 20 ? "hog" : tid === 30 ? "generator" : "other";
const sw = (cpu: number, t: number, prev: number, state: string, next: number) =>
  `  x-${prev}  [00${cpu}] d..2. ${t.toFixed(6)}: sched_switch: prev_comm=x prev_pid=${prev} prev_prio=120 prev_state=${state} ==> next_comm=y next_pid=${next} next_prio=120`;
const wake = (cpu: number, t: number, tid: number, target: number) =>
  `  x-1  [00${cpu}] d..2. ${t.toFixed(6)}: sched_wakeup: comm=node pid=${tid} prio=120 target_cpu=00${target}`;
const mig = (t: number, tid: number, from: number, to: number) =>
  `  x-1  [000] d..2. ${t.toFixed(6)}: sched_migrate_task: comm=node pid=${tid} prio=120 orig_cpu=${from} dest_cpu=${to}`;

describe("analyseSchedTrace", () => {
  it("splits a server's wait by what each CPU ran meanwhile", () => {
    const text = [
      "# tracer: nop",
      sw(0, 100.0, 0, "R", 10), // CPU 0 runs server 10
      sw(1, 100.0, 0, "R", 20), // CPU 1 runs the hog
      wake(1, 100.001, 11, 0), // server 11 queued on CPU 0 behind server 10, CPU 1 hog only
      sw(1, 100.002, 20, "R", 30), // CPU 1: the generator for 1 ms
      sw(1, 100.003, 30, "S", 20), // back to the hog
      sw(0, 100.004, 10, "S", 11), // server 11 runs after 3 ms
      wake(1, 100.005, 10, 1), // server 10 woken onto CPU 1 (the hog's): not beside a free CPU
      sw(1, 100.0055, 20, "R", 10), // runs after 0.5 ms
      sw(0, 100.006, 11, "R", 30), // server 11 preempted by the generator on CPU 0
      mig(100.0065, 11, 0, 1), // pulled to CPU 1 while queued
      sw(1, 100.007, 10, "S", 11), // runs there after 1 ms
    ].join("\n");
    const b = analyseSchedTrace(text, classOf);
    expect(b.waits).toBe(3);
    expect(b.waitMs).toBeCloseTo(3 + 0.5 + 1, 6);
    expect(b.waitsOver1Ms).toBe(1);
    expect(b.pulls).toBe(1);
    expect(b.wakeups).toBe(2);
    expect(b.wakeupsBesideFreeCpu).toBe(1);
    // wait 1 (3 ms, queued on CPU 0 behind server 10): CPU 1 ran the hog 2 ms, the generator 1 ms
    // wait 2 (0.5 ms, queued on CPU 1 behind the hog's last instant): CPU 0 ran server 11
    // wait 3 (1 ms): 0.5 ms on CPU 0 behind the generator with CPU 1 running server 10, then
    // pulled: 0.5 ms on CPU 1 behind server 10 with CPU 0 running the generator
    const ms = (x: number) => x * b.waitMs;
    expect(ms(b.otherCpu.hog)).toBeCloseTo(2, 6);
    expect(ms(b.otherCpu.generator)).toBeCloseTo(1 + 0.5, 6);
    expect(ms(b.otherCpu.server)).toBeCloseTo(0.5 + 0.5, 6);
    expect(ms(b.ownCpu.server)).toBeCloseTo(3 + 0.5, 6);
    expect(ms(b.ownCpu.hog)).toBeCloseTo(0.5, 6);
    expect(ms(b.ownCpu.generator)).toBeCloseTo(0.5, 6);
    expect(b.spanMs).toBeCloseTo(7, 6);
    expect(b.waitMsPerSec).toBeCloseTo((4.5 / 7) * 1000, 3);
  });

  it("counts no wait for a wake-up of a thread still running, nor a pull of a sleeping one", () => {
    const text = [
      sw(0, 5.0, 0, "R", 10), // server 10 runs on CPU 0
      sw(1, 5.0, 0, "R", 20), // the hog on CPU 1
      wake(1, 5.001, 10, 0), // woken while still running (about to sleep): no wait
      sw(0, 5.002, 10, "S", 0), // it sleeps
      mig(5.003, 10, 0, 1), // wake-up placement of the sleeping thread: not a pull
      wake(1, 5.003, 10, 1),
      sw(1, 5.0031, 20, "R", 10), // runs after 0.1 ms
    ].join("\n");
    const b = analyseSchedTrace(text, classOf);
    expect(b.waits).toBe(1);
    expect(b.waitMs).toBeCloseTo(0.1, 6);
    expect(b.pulls).toBe(0);
    expect(b.wakeups).toBe(1);
  });

  it("skips time before both CPUs' current task is known", () => {
    const text = [
      sw(0, 1.0, 0, "R", 10),
      wake(0, 1.001, 11, 0), // CPU 1 unknown: not counted as a wake-up
      sw(0, 1.002, 10, "S", 11),
    ].join("\n");
    const b = analyseSchedTrace(text, classOf);
    expect(b.waits).toBe(0);
    expect(b.wakeups).toBe(0);
    expect(b.waitMs).toBe(0);
  });

  it("counts a server's uninterruptible sleeps over 1 ms, the longest and who woke it", () => {
    const wakeBy = (who: string, cpu: number, t: number, tid: number, target: number) =>
      `      ${who}  [00${cpu}] d..2. ${t.toFixed(6)}: sched_wakeup: comm=node pid=${tid} prio=120 target_cpu=00${target}`;
    const text = [
      sw(0, 1.0, 0, "R", 10),
      sw(1, 1.0, 0, "R", 20),
      sw(0, 1.001, 10, "D", 0), // server 10 blocks in the kernel
      wakeBy("kdamond.0-83", 1, 1.151, 10, 0), // 150 ms later the reclaim lets go
      sw(0, 1.1515, 0, "R", 10),
      sw(0, 1.152, 10, "D", 0), // a short one: 0.5 ms, not counted
      wakeBy("kworker/0:1-50", 0, 1.1525, 10, 0),
      sw(0, 1.153, 0, "R", 10),
      sw(0, 1.154, 10, "S", 0), // an ordinary sleep (waiting for requests): not counted
      wakeBy("node-30", 1, 1.2, 10, 0),
      sw(0, 1.2, 10, "D", 0), // 3 ms
      wakeBy("kworker/0:1-50", 0, 1.203, 10, 0),
    ].join("\n");
    const b = analyseSchedTrace(text, classOf);
    expect(b.blocked.count).toBe(2);
    expect(b.blocked.longestMs).toBeCloseTo(150, 6);
    expect(b.blocked.longestBy).toBe("kdamond.0-83");
  });
});
