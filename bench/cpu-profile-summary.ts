// Summarise a `.cpuprofile` (node --cpu-prof) over a window at its end: the functions with the
// most self time, and the self time by where the code lives (V8's pseudo-frames such as the
// collector, node's own modules, weir's src/ by folder, node_modules by package). For a process
// profiled to its exit, the window is the last --last-ms before --skip-last-ms of shutdown.
//   npx tsx bench/cpu-profile-summary.ts FILE.cpuprofile [--last-ms 20000] [--skip-last-ms 1500] [--top 25]
import fs from "node:fs";
import { type CpuProfile, summarizeCpuProfile } from "./cpu-profile.ts";
import { isMain } from "./harness.ts";

/**
 * Where a summarised function lives: a V8 pseudo-frame `(...)`, `src/<folder>`, `bench/`, a
 * package, `native` (no script) or `node` (any other script: node's own modules, whose URLs
 * `node:internal/...` cpu-profile.ts's shortUrl cuts to their base name).
 */
export function placeOf(fn: string): string {
  if (fn.startsWith("(")) return fn.slice(0, fn.indexOf(")") + 1);
  const where = fn.split(" ")[1] ?? "";
  const src = /^(?:src|bench)\/([^/:]+)/.exec(where);
  if (src) return where.startsWith("bench/") ? "bench/" : `src/${src[1]}`;
  const pkg = /^node_modules\/((?:@[^/]+\/)?[^/:]+)/.exec(where);
  if (pkg) return pkg[1]!;
  return where === "" ? "native" : "node";
}

function option(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

if (isMain(import.meta.url)) {
  const argv = process.argv.slice(2);
  const file = argv[0];
  if (!file)
    throw new Error(
      "usage: cpu-profile-summary FILE.cpuprofile [--last-ms N] [--skip-last-ms N] [--top N]",
    );
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile;
  const lastMs = Number(option(argv, "--last-ms") ?? 20_000);
  const skipMs = Number(option(argv, "--skip-last-ms") ?? 1500);
  const top = Number(option(argv, "--top") ?? 25);
  const toUs = profile.endTime - skipMs * 1000;
  const fromUs = toUs - lastMs * 1000;
  const all = summarizeCpuProfile(profile, { fromUs, toUs, top: 1e9 });
  const byPlace = new Map<string, number>();
  for (const r of all.rows)
    byPlace.set(placeOf(r.fn), (byPlace.get(placeOf(r.fn)) ?? 0) + r.selfMs);
  const out = [
    `${file}: ${all.busyMs.toFixed(1)} ms busy in ${(all.windowMs / 1000).toFixed(1)} s (${((100 * all.busyMs) / all.windowMs).toFixed(2)} % of a core, the profiled thread, the profiler on)`,
    "by where the code lives (self time):",
    ...[...byPlace]
      .sort((a, b) => b[1] - a[1])
      .map(
        ([p, ms]) =>
          `  ${p.padEnd(28)} ${ms.toFixed(1).padStart(8)} ms  ${((100 * ms) / all.busyMs).toFixed(1).padStart(5)} %`,
      ),
    `top ${top} functions (self time):`,
    ...all.rows
      .slice(0, top)
      .map(
        (r) =>
          `  ${r.selfMs.toFixed(1).padStart(8)} ms  ${(100 * r.share).toFixed(1).padStart(5)} %  ${r.fn}`,
      ),
  ];
  process.stdout.write(`${out.join("\n")}\n`);
}
