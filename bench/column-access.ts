// What a column costs the step: the same loop over 10,000 rows (read 12 Float64 columns, write
// 8, trivial arithmetic) with its columns held three ways, timed in one process:
//   separate  — one Float64Array per column (the step's contract: table.ts, state.ts, its scratch)
//   offsets   — every column a range of one Float64Array per side, read as `at[column + i]`
//   rows      — the 12 inputs and the 8 outputs of a row side by side (stride 12 and 8)
// Not a report benchmark (no `bench` export): it says what bounds the policy step's passes, a
// figure for docs/performance.md. Run under the bench lock:
//   node dist/bench/column-access.js [rows] [loops]
import { isMain, nowNs, quantile } from "./harness.ts";

const INPUTS = 12;
const OUTPUTS = 8;

/** A deterministic fill (no Math.random: the same values in every run). */
function filled(length: number): Float64Array {
  const a = new Float64Array(length);
  let x = 1;
  for (let i = 0; i < length; i++) {
    x = (x * 48_271) % 2_147_483_647;
    a[i] = (x / 2_147_483_647) * 100;
  }
  return a;
}

function separate(rows: number, r: Float64Array[], w: Float64Array[]): void {
  const [r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11] = r as [
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
  ];
  const [w0, w1, w2, w3, w4, w5, w6, w7] = w as [
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
  ];
  for (let i = 0; i < rows; i++) {
    const a = r0[i]!;
    const b = r1[i]!;
    const s = r10[i]!;
    const t = r11[i]!;
    w0[i] = a + b;
    w1[i] = r2[i]! * r3[i]!;
    w2[i] = Math.min(r4[i]!, r5[i]!);
    w3[i] = Math.max(r6[i]!, r7[i]!);
    w4[i] = r8[i]! - r9[i]!;
    w5[i] = s + t;
    w6[i] = a * t;
    w7[i] = b - s;
  }
}

function offsets(rows: number, r: Float64Array, w: Float64Array): void {
  // column k starts at k · rows
  const c1 = rows;
  const c2 = 2 * rows;
  const c3 = 3 * rows;
  const c4 = 4 * rows;
  const c5 = 5 * rows;
  const c6 = 6 * rows;
  const c7 = 7 * rows;
  const c8 = 8 * rows;
  const c9 = 9 * rows;
  const c10 = 10 * rows;
  const c11 = 11 * rows;
  for (let i = 0; i < rows; i++) {
    const a = r[i]!;
    const b = r[c1 + i]!;
    const s = r[c10 + i]!;
    const t = r[c11 + i]!;
    w[i] = a + b;
    w[c1 + i] = r[c2 + i]! * r[c3 + i]!;
    w[c2 + i] = Math.min(r[c4 + i]!, r[c5 + i]!);
    w[c3 + i] = Math.max(r[c6 + i]!, r[c7 + i]!);
    w[c4 + i] = r[c8 + i]! - r[c9 + i]!;
    w[c5 + i] = s + t;
    w[c6 + i] = a * t;
    w[c7 + i] = b - s;
  }
}

function interleaved(rows: number, r: Float64Array, w: Float64Array): void {
  for (let i = 0; i < rows; i++) {
    const x = i * INPUTS;
    const o = i * OUTPUTS;
    const a = r[x]!;
    const b = r[x + 1]!;
    const s = r[x + 10]!;
    const t = r[x + 11]!;
    w[o] = a + b;
    w[o + 1] = r[x + 2]! * r[x + 3]!;
    w[o + 2] = Math.min(r[x + 4]!, r[x + 5]!);
    w[o + 3] = Math.max(r[x + 6]!, r[x + 7]!);
    w[o + 4] = r[x + 8]! - r[x + 9]!;
    w[o + 5] = s + t;
    w[o + 6] = a * t;
    w[o + 7] = b - s;
  }
}

/** Median and 10th percentile of `loops` timed calls, ns. */
function timed(loops: number, run: () => void): { medianNs: number; p10Ns: number } {
  for (let k = 0; k < 50; k++) run(); // optimised before timing
  const ns: number[] = [];
  for (let k = 0; k < loops; k++) {
    const t0 = nowNs();
    run();
    ns.push(nowNs() - t0);
  }
  ns.sort((x, y) => x - y);
  return { medianNs: quantile(ns, 0.5), p10Ns: quantile(ns, 0.1) };
}

function main(): void {
  const rows = Number(process.argv[2] ?? 10_000);
  const loops = Number(process.argv[3] ?? 400);
  const columnsIn = Array.from({ length: INPUTS }, (_, k) => filled(rows).map((v) => v + k));
  const columnsOut = Array.from({ length: OUTPUTS }, () => new Float64Array(rows));
  const oneIn = new Float64Array(rows * INPUTS);
  const rowsIn = new Float64Array(rows * INPUTS);
  for (let k = 0; k < INPUTS; k++)
    for (let i = 0; i < rows; i++) {
      oneIn[k * rows + i] = columnsIn[k]![i]!;
      rowsIn[i * INPUTS + k] = columnsIn[k]![i]!;
    }
  const oneOut = new Float64Array(rows * OUTPUTS);
  const rowsOut = new Float64Array(rows * OUTPUTS);
  const ways: Array<[string, () => void]> = [
    ["separate (20 arrays)", () => separate(rows, columnsIn, columnsOut)],
    ["offsets (2 arrays)", () => offsets(rows, oneIn, oneOut)],
    ["rows (2 arrays)", () => interleaved(rows, rowsIn, rowsOut)],
  ];
  process.stdout.write(
    `${rows.toLocaleString("en-US")} rows, read ${INPUTS} columns and write ${OUTPUTS}; ${loops} loops each, twice, interleaved\n`,
  );
  for (let round = 0; round < 2; round++)
    for (const [name, run] of ways) {
      const t = timed(loops, run);
      process.stdout.write(
        `${name.padEnd(22)} median ${(t.medianNs / 1e3).toFixed(1)} µs, p10 ${(t.p10Ns / 1e3).toFixed(1)} µs, ${(t.medianNs / rows).toFixed(2)} ns a row\n`,
      );
    }
  // the outputs must agree, or the three loops did not do the same work
  for (let k = 0; k < OUTPUTS; k++)
    for (let i = 0; i < rows; i++) {
      const v = columnsOut[k]![i]!;
      if (oneOut[k * rows + i] !== v || rowsOut[i * OUTPUTS + k] !== v)
        throw new Error(`column ${k} row ${i}: the three layouts disagree`);
    }
}

// bench/ modules are imported by the report to find the benchmarks: run only as a program
if (isMain(import.meta.url)) main();
