// A packet server's steady heap (`weir testbed serve --steady-heap`, testbedUp's
// `steadyServerHeap`): glibc's malloc told, through mallopt, never to give memory back at the
// top of its heap (M_TRIM_THRESHOLD 1 GiB) and to grow it 64 MiB at a time (M_TOP_PAD), so a
// server that has warmed up stops calling brk.
//
// Why: a host may reclaim memory behind its tenants' backs. These machines run a DAMON
// `pageout` scheme (kdamond, on physical addresses). The kernel's scheduler events showed
// overloaded servers asleep in D state for up to 814 ms, woken by kdamond.0, and the stacks of
// their sleeps while the load ran were all in brk, waiting to take a write lock — by our
// reading the heap's anon_vma lock, which reclaim holds to walk a page's mappings, held long by
// kdamond, an ordinary thread in the root cgroup with little CPU beside a busy testbed
// (docs/measured-facts.md, *The host's memory reclaim stalls servers*). That stall is the host's, not the CPU policy's, and it lands on any
// run of any policy at random. Locking the servers' memory (mlockall) stopped it too, but V8
// aborts when it sets locked pages inaccessible ("Check failed: 0 == ret" in
// v8::base::OS::SetPermissions, as its code space grows), so the heap is kept steady instead.
import { createRequire } from "node:module";

const M_TRIM_THRESHOLD = -1;
const M_TOP_PAD = -2;
/** Free memory at the heap's top kept rather than trimmed, bytes. */
const TRIM_THRESHOLD_BYTES = 2 ** 30;
/** What the heap grows by beyond a request, bytes. */
const TOP_PAD_BYTES = 64 * 2 ** 20;

const requireFromHere = createRequire(import.meta.url);

/** Tell this process's malloc to keep its heap steady; null when it did, or why not. */
export function steadyHeap(): string | null {
  let koffi: typeof import("koffi");
  try {
    koffi = requireFromHere("koffi");
  } catch (e) {
    return `koffi could not be loaded: ${(e as Error).message}`;
  }
  const mallopt = koffi.load("libc.so.6").func("int mallopt(int param, int value)");
  // mallopt returns 1 on success, 0 on an error
  if (mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) !== 1)
    return "mallopt(M_TRIM_THRESHOLD) failed";
  if (mallopt(M_TOP_PAD, TOP_PAD_BYTES) !== 1) return "mallopt(M_TOP_PAD) failed";
  return null;
}
