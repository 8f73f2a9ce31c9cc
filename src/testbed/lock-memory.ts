// Locking a packet server's memory (`weir testbed serve --lock-memory`, testbedUp's
// `lockServerMemory`): mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) through koffi + libc,
// and munlockall() again as the process exits.
//
// Why: a host may reclaim memory behind its tenants' backs. These machines run a DAMON
// `pageout` scheme (kdamond, on physical addresses). To reclaim a page kdamond walks the
// mappings of it, holding the lock of its process's memory map (the anon_vma's rwsem for
// heap pages, the folio lock for a file page) — and kdamond, an ordinary thread in the root
// cgroup, gets little CPU beside a busy testbed, so it can hold that lock for a long time. A
// server that grows or shrinks its heap meanwhile (glibc's brk) waits for it in uninterruptible
// sleep: the kernel's scheduler events showed overloaded servers asleep in D state for 20–814 ms,
// woken by kdamond.0, with stacks in brk → vma_expand → down_write (docs/measured-facts.md,
// *The host's memory reclaim stalls servers*). That stall is the host's, not the CPU policy's,
// and it lands on any run of any policy at random. A locked page is unevictable, and reclaim
// passes it over before walking its mappings: with every page of the servers locked, the same
// runs showed no such sleep.
//
// MCL_ONFAULT locks pages as they are touched rather than populating every mapping at once (V8
// reserves far more address space than it uses). V8 cannot free its code space's pages while
// they are locked (its mprotect fails and it aborts: "Check failed: 0 == ret" in
// v8::base::OS::SetPermissions), which it does only as its isolate is torn down, so the lock
// is dropped on `exit`. A process killed outright tears nothing down.
import { createRequire } from "node:module";

const MCL_CURRENT = 1;
const MCL_FUTURE = 2;
const MCL_ONFAULT = 4;

const requireFromHere = createRequire(import.meta.url);

/**
 * Lock this process's pages in memory, present and future, each as it is first touched, until
 * it exits. Returns null when locked, or why not (the caller says it and goes on unlocked).
 */
export function lockProcessMemory(): string | null {
  let koffi: typeof import("koffi");
  try {
    koffi = requireFromHere("koffi");
  } catch (e) {
    return `koffi could not be loaded: ${(e as Error).message}`;
  }
  const libc = koffi.load("libc.so.6");
  const mlockall = libc.func("int mlockall(int flags)");
  const munlockall = libc.func("int munlockall()");
  if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) !== 0) {
    const e = koffi.errno();
    return `mlockall failed: ${ERRNO_NAMES[e] ?? `errno ${e}`}`;
  }
  process.once("exit", () => munlockall());
  return null;
}

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM (no CAP_IPC_LOCK)",
  11: "EAGAIN (some pages could not be locked)",
  12: "ENOMEM (over RLIMIT_MEMLOCK)",
  22: "EINVAL (MCL_ONFAULT unknown to this kernel: before Linux 4.4)",
};
