// weir's one clock: the wall clock as it was when this process started, advanced by the
// monotonic clock. It reads like epoch milliseconds (so timestamps on the wire and in records
// stay meaningful to people) but never steps while the process runs: an NTP step or
// `date -s` changes only what the next process starts from. Ages, staleness, rate-limit
// refills and wire timestamps are all measured on it; no check compares two processes'
// clocks (docs/wire-formats.md, "Clocks").

/**
 * Whole milliseconds since the Unix epoch as of process start, plus monotonic time since then
 * (whole: wire timestamps are integers).
 */
export const stepFreeNowMs = (): number => Math.floor(performance.timeOrigin + performance.now());
