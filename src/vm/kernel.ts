// The guest kernel: Debian's linux-image-6.1.0-*-amd64, fetched with `apt-get download` into
// a cache dir and unpacked with `dpkg-deb -x` (never installed on the host), plus the
// modules.dep that `depmod -b` writes for the unpacked tree (the .deb ships none).
// The `-cloud` flavour lacks 9p, so the generic one is used.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { withFileLock } from "../testbed/lock.ts";

const run = promisify(execFile);

/** The metapackage whose dependency names the current kernel package. */
export const KERNEL_METAPACKAGE = "linux-image-amd64";
const KERNEL_PACKAGE_RE = /^linux-image-(6\.1\.0-\d+-amd64)$/;

export interface GuestKernel {
  /** e.g. "linux-image-6.1.0-57-amd64". */
  packageName: string;
  /** `uname -r` in the guest, e.g. "6.1.0-57-amd64". */
  release: string;
  vmlinuz: string;
  /** <unpacked>/lib/modules/<release>: holds modules.dep. */
  modulesDir: string;
}

/**
 * The kernel package `apt-cache depends linux-image-amd64` names (its "Depends:" lines).
 * Only a 6.1.0-*-amd64 package is accepted (the kernel this folder was made for).
 */
export function parseKernelDepends(text: string): string {
  for (const line of text.split("\n")) {
    const m = /^\s*Depends:\s*(\S+)/.exec(line);
    if (m && KERNEL_PACKAGE_RE.test(m[1]!)) return m[1]!;
  }
  throw new WeirError(
    ErrorCodes.TESTBED,
    `apt-cache depends ${KERNEL_METAPACKAGE} names no linux-image-6.1.0-*-amd64 package (run apt-get update?)`,
  );
}

export const kernelRelease = (packageName: string): string => {
  const m = KERNEL_PACKAGE_RE.exec(packageName);
  if (!m)
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `'kernelPackage' must be linux-image-6.1.0-<n>-amd64: current value is ${JSON.stringify(packageName)}`,
    );
  return m[1]!;
};

/** Where an unpacked kernel lives in the cache. */
export function kernelPaths(cacheDir: string, packageName: string): GuestKernel {
  const release = kernelRelease(packageName);
  const root = join(cacheDir, packageName);
  return {
    packageName,
    release,
    vmlinuz: join(root, "boot", `vmlinuz-${release}`),
    modulesDir: join(root, "lib", "modules", release),
  };
}

async function tool(cmd: string, args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, {
      cwd,
      timeout: 300_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string; code?: string };
    const msg =
      err.code === "ENOENT"
        ? `\`${cmd}\` is not installed (.ci/run installs it)`
        : err.stderr?.trim() || err.message;
    throw new WeirError(ErrorCodes.TESTBED, `${cmd} ${args.join(" ")}: ${msg}`, { cause: e });
  }
}

/**
 * The guest kernel in `cacheDir`, fetched and unpacked on first use. Concurrent callers
 * share one download (a file lock in the cache dir). `packageName` pins a version; by
 * default the one linux-image-amd64 depends on.
 */
export async function ensureKernel(cacheDir: string, packageName?: string): Promise<GuestKernel> {
  mkdirSync(cacheDir, { recursive: true });
  const pkg =
    packageName ?? parseKernelDepends(await tool("apt-cache", ["depends", KERNEL_METAPACKAGE]));
  const k = kernelPaths(cacheDir, pkg);
  if (existsSync(k.vmlinuz) && existsSync(join(k.modulesDir, "modules.dep"))) return k;
  const locked = withFileLock(
    join(cacheDir, "fetch.lock"),
    async () => {
      if (existsSync(k.vmlinuz) && existsSync(join(k.modulesDir, "modules.dep"))) return k;
      const dl = join(cacheDir, "dl");
      mkdirSync(dl, { recursive: true });
      const deb = () => readdirSync(dl).find((f) => f.startsWith(`${pkg}_`) && f.endsWith(".deb"));
      if (!deb()) await tool("apt-get", ["download", pkg], dl);
      const file = deb();
      if (!file) throw new WeirError(ErrorCodes.TESTBED, `apt-get download ${pkg} left no .deb`);
      const root = join(cacheDir, pkg);
      rmSync(root, { recursive: true, force: true });
      await tool("dpkg-deb", ["-x", join(dl, file), root]);
      await tool("depmod", ["-b", root, k.release]);
      return k;
    },
    { timeoutMs: 600_000 },
  );
  return locked;
}
