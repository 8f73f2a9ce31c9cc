// The guest's initramfs: busybox-static, the few kernel modules a guest needs (virtio PCI,
// virtio-net, 9p over virtio, fw_cfg in sysfs) loaded in modules.dep order, and an /init that
// mounts the guest root read-only over 9p (src/vm/guest-root.ts: Node, its libraries and the
// package — not the host's `/`) with the package's exports named on the kernel command line,
// chroots into it (with the guest's own /proc, /sys, /dev, /tmp, /run), copies the per-guest
// files QEMU passes as fw_cfg items in, and runs its script; a guest powers itself off after
// `weir.lifetime=` seconds. One initramfs per kernel release serves every guest: what differs
// between guests is on the command line (`weir.ip=`, `weir.mounts=`, `weir.lifetime=`) and in
// fw_cfg. Pure parts (modules.dep, load order, the script) are separate from the build.
import { execFile } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { GUEST_FILES, GUEST_FILES_DIR } from "./guest.ts";
import { GUEST_ROOT_TAG } from "./guest-root.ts";
import type { GuestKernel } from "./kernel.ts";

const run = promisify(execFile);

/**
 * Modules every guest loads: PCI virtio transport, the NIC on the tap, 9p for the guest root,
 * and fw_cfg's sysfs files (the per-guest run script and key).
 */
export const GUEST_MODULES = [
  "virtio_pci",
  "virtio_net",
  "9pnet_virtio",
  "9p",
  "qemu_fw_cfg",
] as const;

/** Where the guest's sysfs lists the fw_cfg items QEMU passed as `opt/weir/<name>`. */
export const GUEST_FW_CFG_DIR = "/sys/firmware/qemu_fw_cfg/by_name/opt/weir";

/** The 9p options that make Node start fast on the guest root (without them `node -e` takes seconds). */
export const HOST_ROOT_MOUNT_OPTIONS = "trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000";

/** Lines the guest's /init prints on the serial console (the host waits for them). */
export const GUEST_READY_LINE = "weir-vm: ready";
export const GUEST_RUN_EXIT_LINE = "weir-vm: run exited";

/** modules.dep: module name (file name without .ko, dashes as written) → path and direct deps. */
export type ModulesDep = Map<string, { path: string; deps: string[] }>;

const moduleName = (path: string): string => basename(path).replace(/\.ko(\.(xz|zst|gz))?$/, "");

export function parseModulesDep(text: string): ModulesDep {
  const out: ModulesDep = new Map();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const path = line.slice(0, colon).trim();
    const deps = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter((d) => d !== "");
    out.set(moduleName(path), { path, deps });
  }
  return out;
}

/**
 * Module paths to insmod, dependencies first, each once (a depth-first post-order over
 * modules.dep, so it does not rely on the order depmod lists a module's dependencies in).
 */
export function loadOrder(dep: ModulesDep, wanted: readonly string[]): string[] {
  const byPath = new Map([...dep.values()].map((m) => [m.path, m]));
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (path: string, chain: string[]) => {
    if (seen.has(path)) return;
    if (chain.includes(path))
      throw new WeirError(
        ErrorCodes.TESTBED,
        `modules.dep has a cycle: ${[...chain, path].join(" -> ")}`,
      );
    const m = byPath.get(path);
    if (!m)
      throw new WeirError(ErrorCodes.TESTBED, `modules.dep names ${path} but has no line for it`);
    for (const d of m.deps) visit(d, [...chain, path]);
    seen.add(path);
    out.push(path);
  };
  for (const name of wanted) {
    const m = dep.get(name);
    if (!m)
      throw new WeirError(
        ErrorCodes.TESTBED,
        `module ${name} is not in modules.dep (built into the kernel, or a kernel without it?)`,
      );
    visit(m.path, []);
  }
  return out;
}

/**
 * The guest's /init (busybox sh). It never exits (init exiting panics the kernel): when the
 * run script ends it prints GUEST_RUN_EXIT_LINE and waits.
 */
export function initScript(modules: readonly string[]): string {
  const insmods = modules.map(
    (m) => `insmod /lib/modules/${basename(m)} || fail "insmod ${basename(m)}"`,
  );
  return `#!/bin/busybox sh
# weir guest init: modules, the guest root over 9p (read-only), network from the command
# line, then the per-guest script (fw_cfg opt/weir/run.sh) inside the root.
/bin/busybox --install -s /bin
export PATH=/bin
fail() { echo "weir-vm: FAILED: $*"; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
${insmods.join("\n")}
arg() { for w in $(cat /proc/cmdline); do case "$w" in "$1="*) echo "\${w#*=}";; esac; done; }
mount -t 9p -o ${HOST_ROOT_MOUNT_OPTIONS} ${GUEST_ROOT_TAG} /mnt/host || fail "mount ${GUEST_ROOT_TAG}"
# weir.mounts=<tag>:<path>,...: the package's exports, each at its path in the root
for m in $(arg weir.mounts | tr , ' '); do
  mount -t 9p -o ${HOST_ROOT_MOUNT_OPTIONS} "\${m%%:*}" "/mnt/host\${m#*:}" || fail "mount $m"
done
mount -t proc proc /mnt/host/proc
mount -t sysfs sys /mnt/host/sys
mount -t devtmpfs dev /mnt/host/dev
mount -t tmpfs tmp /mnt/host/tmp
IP=$(arg weir.ip); LIFE=$(arg weir.lifetime)
if [ -n "$LIFE" ]; then (sleep "$LIFE"; echo "weir-vm: lifetime over"; poweroff -f) & fi
# the per-guest files QEMU passed as fw_cfg items (the guest's own; no other guest's)
mkdir -p /mnt/host${GUEST_FILES_DIR}
for f in ${GUEST_FILES.join(" ")}; do
  if [ -f ${GUEST_FW_CFG_DIR}/$f/raw ]; then
    cp ${GUEST_FW_CFG_DIR}/$f/raw /mnt/host${GUEST_FILES_DIR}/$f || fail "copy fw_cfg $f"
  fi
done
mount -t tmpfs run /mnt/host/run
ip link set lo up
if [ -n "$IP" ]; then ip addr add "$IP" dev eth0 && ip link set eth0 up || fail "eth0 $IP"; fi
echo "${GUEST_READY_LINE} $(cat /proc/uptime)"
if [ -f /mnt/host${GUEST_FILES_DIR}/run.sh ]; then
  chroot /mnt/host /bin/sh ${GUEST_FILES_DIR}/run.sh
  echo "${GUEST_RUN_EXIT_LINE} $?"
fi
while :; do sleep 3600; done
`;
}

export interface Initramfs {
  path: string;
  /** Module files in the order /init loads them. */
  modules: string[];
}

/**
 * Build (or reuse) `<cacheDir>/initramfs-<release>.cpio`: busybox-static, the modules, /init.
 * Rebuilt when /init's text differs from the one recorded beside it.
 */
export async function ensureInitramfs(
  cacheDir: string,
  kernel: GuestKernel,
  opts: { busybox?: string } = {},
): Promise<Initramfs> {
  const busybox = opts.busybox ?? "/bin/busybox";
  if (!existsSync(busybox))
    throw new WeirError(
      ErrorCodes.TESTBED,
      `${busybox} is missing: install busybox-static (.ci/run does)`,
    );
  const dep = parseModulesDep(readFileSync(join(kernel.modulesDir, "modules.dep"), "utf8"));
  const modules = loadOrder(dep, GUEST_MODULES);
  const init = initScript(modules);
  const out = join(cacheDir, `initramfs-${kernel.release}.cpio`);
  const stamp = `${out}.init`;
  if (existsSync(out) && existsSync(stamp) && readFileSync(stamp, "utf8") === init)
    return { path: out, modules };

  const tree = `${out}.tree.${process.pid}`;
  rmSync(tree, { recursive: true, force: true });
  try {
    for (const d of ["bin", "dev", "proc", "sys", "mnt/host", "lib/modules"])
      mkdirSync(join(tree, d), { recursive: true });
    copyFileSync(busybox, join(tree, "bin", "busybox"));
    for (const m of modules)
      copyFileSync(join(kernel.modulesDir, m), join(tree, "lib", "modules", basename(m)));
    writeFileSync(join(tree, "init"), init, { mode: 0o755 });
    const tmp = `${out}.${process.pid}.tmp`;
    try {
      await run("sh", ["-c", `find . | cpio -o -H newc --quiet > '${tmp}'`], {
        cwd: tree,
        timeout: 120_000,
      });
    } catch (e) {
      throw new WeirError(
        ErrorCodes.TESTBED,
        `cpio of the initramfs failed (is cpio installed?): ${(e as { stderr?: string }).stderr ?? (e as Error).message}`,
        { cause: e },
      );
    }
    renameSync(tmp, out);
    writeFileSync(stamp, init);
    return { path: out, modules };
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
}
