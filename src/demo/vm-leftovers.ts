// What of `weir demo --vm` the kernel still lists after its teardown: processes tagged with
// its prefixes, its network namespaces and host links, its cgroup dirs, its /dev/shm and
// /run/weir files (the manager's log, kept on purpose, aside).
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Anything of the demo's prefixes the kernel still lists (processes, namespaces, links,
 * cgroups, shared-memory and state files). `keep`: files under /run/weir left on purpose.
 */
export function leftovers(
  prefixes: readonly string[],
  netnsPrefix: string,
  keep: readonly string[] = [],
): string[] {
  const out: string[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, "utf8");
      if (prefixes.some((p) => argv.includes(`weir:${p}/`) || argv.includes(`--weir-tag=${p}/`)))
        out.push(`process ${e}`);
    } catch {
      // exited meanwhile
    }
  }
  try {
    for (const ns of readdirSync("/run/netns"))
      if (ns.startsWith(`${netnsPrefix}-`)) out.push(`netns ${ns}`);
  } catch {
    // no namespaces at all
  }
  for (const root of [
    "/sys/fs/cgroup/cpu",
    "/sys/fs/cgroup/cpuacct",
    "/sys/fs/cgroup/unified",
    "/sys/fs/cgroup",
  ])
    for (const p of prefixes) if (existsSync(join(root, p))) out.push(`cgroup ${join(root, p)}`);
  try {
    for (const l of execFileSync("ip", ["-o", "link"], { encoding: "utf8" }).split("\n")) {
      const name = l.split(": ")[1]?.split("@")[0] ?? "";
      if (prefixes.some((p) => name.startsWith(p))) out.push(`link ${name}`);
    }
  } catch {
    // no ip: namespaces and cgroups above still say it
  }
  for (const dir of ["/dev/shm", "/run/weir"]) {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names)
      if (prefixes.some((p) => n.includes(p)) && !keep.includes(join(dir, n)))
        out.push(`file ${join(dir, n)}`);
  }
  return out;
}
