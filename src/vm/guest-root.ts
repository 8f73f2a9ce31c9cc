// What a guest sees of the host over 9p: only what Node and the agent need, read-only, never
// the host's `/`. Three exports:
// - `hostroot`: a small root kept in the cache dir — busybox as /bin/sh, the Node binary and
//   the shared libraries it links (each at its host path, as `ldd` names them), the package's
//   package.json (Node reads its "type") and empty mount points (proc, sys, dev, tmp, run, the
//   package's dist/ and node_modules/);
// - `weirdist`: the package's compiled dist/, mounted at <package>/dist;
// - `weirmods`: its node_modules (the directory a symlink points to, if it is one), mounted at
//   <package>/node_modules.
// The per-guest files (run script, report key) do not go through 9p at all: QEMU passes them
// as fw_cfg files (src/vm/qemu.ts), so no guest can reach another guest's key.
// Pure parts (ldd's output, the plan) are separate from the build (files).
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { withFileLock } from "../testbed/lock.ts";

const run = promisify(execFile);

/** One 9p export: QEMU shares `hostPath` under `tag`; the guest mounts it at `guestPath`. */
export interface GuestExport {
  tag: string;
  hostPath: string;
  /** Where the guest mounts it, inside the root (`/` for the root itself). */
  guestPath: string;
}

/** The root's 9p tag (the initramfs mounts it first and chroots into it). */
export const GUEST_ROOT_TAG = "hostroot";
export const GUEST_DIST_TAG = "weirdist";
export const GUEST_MODULES_TAG = "weirmods";

/** Where the guest mounts its own tmpfs after the package's exports: a package there is hidden. */
const GUEST_TMPFS = ["/tmp", "/run"];

/**
 * The package's path as the guest can mount it, or a clear error: an absolute path of letters,
 * digits and ./_+- (it travels on the kernel command line), not under /tmp or /run (the guest
 * mounts its own tmpfs there after the package's exports, which would hide them).
 */
export function mountablePackageRoot(p: string): string {
  if (!/^\/[\w./+-]*$/.test(p))
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `'packageRoot' must be an absolute path of letters, digits and ./_+- (the guest mounts it from its kernel command line): current value is ${JSON.stringify(p)}`,
    );
  const under = GUEST_TMPFS.find((d) => p === d || p.startsWith(`${d}/`));
  if (under)
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `'packageRoot' must not be under ${under}: the guest mounts its own tmpfs on ${under} after the package's exports, so the agent would not be found (move the checkout, e.g. under /work or /opt): current value is ${JSON.stringify(p)}`,
    );
  return p;
}

/** Directories the guest mounts its own file systems on. */
const MOUNT_POINTS = ["proc", "sys", "dev", "tmp", "run"];

/**
 * The absolute paths of the shared libraries `ldd` lists (`name => /path (addr)` and the
 * loader's `/path (addr)`); the vDSO, which has no file, is left out. Pure.
 */
export function parseLdd(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (m && !out.includes(m[1]!)) out.push(m[1]!);
  }
  return out;
}

export interface GuestRootPlan {
  /** Files copied into the root: `from` on the host → `to` inside the root. */
  files: Array<{ from: string; to: string }>;
  /** Empty directories made in the root (mount points). */
  dirs: string[];
  /** The package's dist/ and node_modules/, exported beside the root. */
  exports: GuestExport[];
}

/**
 * What the root holds and what is exported beside it, for a package at `packageRoot` (its
 * node_modules really at `modulesDir`) run by `nodeBin` (linking `libs`). Pure.
 */
export function planGuestRoot(o: {
  nodeBin: string;
  libs: readonly string[];
  busybox: string;
  packageRoot: string;
  modulesDir: string;
}): GuestRootPlan {
  const dist = join(o.packageRoot, "dist");
  const modules = join(o.packageRoot, "node_modules");
  return {
    files: [
      { from: o.busybox, to: "/bin/sh" },
      { from: o.nodeBin, to: o.nodeBin },
      ...o.libs.map((l) => ({ from: l, to: l })),
      { from: join(o.packageRoot, "package.json"), to: join(o.packageRoot, "package.json") },
    ],
    dirs: [...MOUNT_POINTS.map((d) => `/${d}`), dist, modules],
    exports: [
      { tag: GUEST_DIST_TAG, hostPath: dist, guestPath: dist },
      { tag: GUEST_MODULES_TAG, hostPath: o.modulesDir, guestPath: modules },
    ],
  };
}

export interface GuestRoot {
  /** The root directory (in the cache dir) and every export, the root first. */
  dir: string;
  exports: GuestExport[];
}

/**
 * Build (or reuse) the guest root for `packageRoot` in `<cacheDir>/guest-root-<hash>`: the hash
 * covers the plan and each copied file's size and modification time, so a new Node or
 * package.json gives a new root (the old one stays in the cache until removed by hand).
 */
export async function ensureGuestRoot(
  cacheDir: string,
  o: { packageRoot: string; nodeBin?: string; busybox?: string },
): Promise<GuestRoot> {
  const nodeBin = realpathSync(o.nodeBin ?? process.execPath);
  const busybox = o.busybox ?? "/bin/busybox";
  if (!existsSync(busybox))
    throw new WeirError(
      ErrorCodes.TESTBED,
      `${busybox} is missing: install busybox-static (.ci/run does)`,
    );
  if (!existsSync(join(o.packageRoot, "dist")))
    throw new WeirError(
      ErrorCodes.TESTBED,
      `${o.packageRoot}/dist is missing: the guest runs the compiled agent (npm run build)`,
    );
  let lddOut: string;
  try {
    lddOut = (await run("ldd", [nodeBin], { timeout: 30_000 })).stdout;
  } catch (e) {
    throw new WeirError(ErrorCodes.TESTBED, `ldd ${nodeBin} failed: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const plan = planGuestRoot({
    nodeBin,
    libs: parseLdd(lddOut),
    busybox,
    packageRoot: o.packageRoot,
    modulesDir: realpathSync(join(o.packageRoot, "node_modules")),
  });
  const key = createHash("sha256")
    .update(JSON.stringify(plan))
    .update(
      plan.files
        .map((f) => {
          const s = statSync(f.from);
          return `${f.from}:${s.size}:${s.mtimeMs}`;
        })
        .join("\n"),
    )
    .digest("hex")
    .slice(0, 16);
  const dir = join(cacheDir, `guest-root-${key}`);
  const exports = [{ tag: GUEST_ROOT_TAG, hostPath: dir, guestPath: "/" }, ...plan.exports];
  const stamp = `${dir}.done`;
  if (existsSync(stamp)) return { dir, exports };
  return withFileLock(join(cacheDir, "guest-root.lock"), async () => {
    if (existsSync(stamp)) return { dir, exports };
    const tmp = `${dir}.${process.pid}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    try {
      for (const d of plan.dirs) mkdirSync(join(tmp, d), { recursive: true });
      for (const f of plan.files) {
        mkdirSync(dirname(join(tmp, f.to)), { recursive: true });
        copyFileSync(f.from, join(tmp, f.to)); // keeps the mode (libuv copies it)
      }
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
      writeFileSync(stamp, `${new Date().toISOString()}\n`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    return { dir, exports };
  });
}
