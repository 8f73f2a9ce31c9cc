#!/usr/bin/env bash
# Consecutive `CI=true npm test` runs on this checkout, on a machine kept busy on purpose, to show
# the suite does not flake. Each run has --hogs CPU hogs (busy loops at normal priority, started
# before the run and killed by PID after it) beside it; the first failure stops the soak.
#
#   bash scripts/soak.sh [--runs 10] [--hogs 1] [--out DIR] [--lock FILE] [--gap-s 0]
#
# --lock FILE holds FILE (flock) during each run, so heavy benchmarks that take the same lock run
# between runs, not beside them; --gap-s waits between runs to let them in. DIR (default
# .soak/<UTC date-time>) gets each run's output (run-N.log) and soak.md, a Markdown table with one
# row per run: start and end (UTC), exit code, the three projects' test counts, load average before
# and after, commit. Exit 0 only if every run passed.
set -u
runs=10 hogs=1 out="" lock="" gap=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --hogs) hogs="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --lock) lock="$2"; shift 2 ;;
    --gap-s) gap="$2"; shift 2 ;;
    *) echo "soak: unknown option $1 (see the top of scripts/soak.sh)" >&2; exit 2 ;;
  esac
done
for v in "$runs" "$hogs" "$gap"; do
  case "$v" in ''|*[!0-9]*) echo "soak: --runs, --hogs and --gap-s take whole numbers (got '$v')" >&2; exit 2 ;; esac
done
cd "$(dirname "$0")/.." || exit 2
[ -n "$out" ] || out=".soak/$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$out" || exit 2
table="$out/soak.md"
hog_pids=()
stop_hogs() {
  for p in "${hog_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  hog_pids=()
}
trap 'stop_hogs' EXIT
trap 'stop_hogs; exit 130' INT TERM

commit=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
{
  echo "Soak on $(hostname): $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(uname -r), Node $(node --version); $hogs CPU hog(s) at normal priority beside every run; commit $commit."
  echo
  echo "| run | start (UTC) | end (UTC) | exit | unit | e2e | faults | load before → after | commit |"
  echo "|---|---|---|---|---|---|---|---|---|"
} > "$table"

# "Tests  1018 passed | 10 skipped (1028)" → "1018 passed, 10 skipped"; one line per vitest project
counts() {
  sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -E '^ +Tests +' | sed -E 's/^ +Tests +//; s/ \([0-9]+\)$//; s/ \| /, /g'
}

run_one() {
  for _ in $(seq 1 "$hogs"); do
    bash -c 'while :; do :; done' &
    hog_pids+=("$!")
  done
  local start end load0 load1 rc
  start=$(date -u +%H:%M:%S); load0=$(cut -d' ' -f1 /proc/loadavg)
  CI=true npm test < /dev/null > "$out/run-$i.log" 2>&1; rc=$?
  end=$(date -u +%H:%M:%S); load1=$(cut -d' ' -f1 /proc/loadavg)
  stop_hogs
  mapfile -t c < <(counts "$out/run-$i.log")
  echo "| $i | $start | $end | $rc | ${c[0]:-–} | ${c[1]:-–} | ${c[2]:-–} | $load0 → $load1 | $(git rev-parse --short HEAD) |" >> "$table"
  return "$rc"
}

passed=0
for i in $(seq 1 "$runs"); do
  [ "$i" -gt 1 ] && [ "$gap" -gt 0 ] && sleep "$gap"
  if [ -n "$lock" ]; then
    exec 9> "$lock"; flock 9; run_one; rc=$?; flock -u 9; exec 9>&-
  else
    run_one; rc=$?
  fi
  tail -n 1 "$table"
  [ "$rc" -eq 0 ] || { echo "soak: run $i failed (exit $rc): $out/run-$i.log"; break; }
  passed=$((passed + 1))
done
echo "soak: $passed of $runs consecutive runs passed; table: $table"
[ "$passed" -eq "$runs" ]
