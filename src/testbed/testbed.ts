// A testbed of real partitions on this host: per network partition a namespace, a veth
// pair (198.18.0.0/15), a cgroup and a packet server inside both; optional "batch hog"
// partitions that only burn CPU. Everything created is recorded first (state.ts), so
// `testbedDown` removes exactly that, also after a crash or SIGKILL of `testbedUp`.
// `testbedUp` runs the steps in provision.ts; `testbedStatus` is in status.ts.
import { existsSync, unlinkSync } from "node:fs";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { detectTestbedLayout } from "./cgroups.ts";
import { defaultStateFile, validatePrefix } from "./names.ts";
import { ip, linkExists, netnsExists } from "./net.ts";
import {
  netRootsOf,
  requireRoot,
  type TestbedOptions,
  type TestbedRoots,
  testbedRoots,
  wantedTestbed,
} from "./options.ts";
import { isAlive, stopProcesses } from "./procs.ts";
import {
  awaitServers,
  ensureHogs,
  ensureNetworks,
  ensureParentCgroups,
  ensureServers,
  type UpContext,
} from "./provision.ts";
import {
  dropResource,
  newState,
  type ResourceRecord,
  readState,
  type TestbedState,
  teardownOrder,
  writeState,
} from "./state.ts";
import { errMsg, removeCgroup, testbedPids, testbedTags } from "./teardown.ts";

/**
 * Bring a testbed up (idempotent: what exists and is recorded is kept, the rest is
 * created; a partition already up keeps its address, port, cost and server). Partitions
 * in the record but not in `opts` are left as they are. Resolves once every packet
 * server answers a probe. On failure it tears down the record (unless cleanupOnError is
 * false) and throws.
 */
export async function testbedUp(opts: TestbedOptions): Promise<TestbedState> {
  requireRoot("weir testbed up");
  const prefix = validatePrefix(opts.prefix ?? "weir");
  const stateFile = opts.stateFile ?? defaultStateFile(prefix);
  const roots = testbedRoots(opts.roots);
  const now = opts.now ?? Date.now;
  const maxLifetimeMs = opts.maxLifetimeMs ?? 3_600_000;
  const want = wantedTestbed(opts);

  let state = readState(stateFile);
  if (state && state.prefix !== prefix) {
    throw new WeirError(
      ErrorCodes.TESTBED,
      `${stateFile} records prefix ${state.prefix}, not ${prefix}`,
    );
  }
  state ??= newState({
    prefix,
    stateFile,
    cgroup: detectTestbedLayout(roots.cgroupfs),
    nowMs: now(),
    expiresAtEpochMs: now() + maxLifetimeMs,
  });
  writeState(state);
  const ctx: UpContext = {
    state,
    want,
    prefix,
    stateFile,
    roots,
    maxLifetimeMs,
    now,
    log: opts.log ?? (() => {}),
    expiresAtEpochMs: state.expiresAtEpochMs,
  };

  try {
    await ensureParentCgroups(ctx, opts.groupCpuShares);
    await ensureNetworks(ctx, opts.lockFile ?? "/run/weir/addr.lock");
    await ensureServers(ctx);
    await ensureHogs(ctx);
    state.expiresAtEpochMs = ctx.expiresAtEpochMs;
    writeState(state);
    const live = await awaitServers(ctx, opts.readyTimeoutMs ?? 60_000);
    ctx.log(
      `testbed ${prefix} up: ${live.length} partitions, ${want.hogs.length} hogs, state ${stateFile}`,
    );
    return state;
  } catch (err) {
    if (opts.cleanupOnError ?? true) {
      try {
        await testbedDown(stateFile, { roots });
      } catch {
        // the original error matters more; the record is still there for `down`
      }
    }
    throw err;
  }
}

export interface DownReport {
  stateFile: string;
  prefix: string | null;
  /** "kind id" of each thing removed (or found already gone). */
  removed: string[];
  /** Pids stopped. */
  killed: number[];
  failed: { what: string; error: string }[];
  /** True when nothing recorded is left and the state file was removed. */
  clean: boolean;
}

/**
 * Remove exactly what the state file records: stop its processes (verified by start
 * time or tag), delete host-side veths, then namespaces, then cgroup dirs, then log
 * files; finally the state file. What cannot be removed stays recorded and is reported.
 */
export async function testbedDown(
  stateFile: string,
  opts: { roots?: Partial<TestbedRoots>; graceMs?: number } = {},
): Promise<DownReport> {
  requireRoot("weir testbed down");
  const roots = testbedRoots(opts.roots);
  const net = netRootsOf(roots);
  const state = readState(stateFile);
  const report: DownReport = {
    stateFile,
    prefix: state?.prefix ?? null,
    removed: [],
    killed: [],
    failed: [],
    clean: true,
  };
  if (!state) return report;

  const pids = testbedPids(state, roots.procfs);
  const left = await stopProcesses(pids, {
    procfs: roots.procfs,
    ...(opts.graceMs === undefined ? {} : { graceMs: opts.graceMs }),
  });
  report.killed = pids.filter((p) => !left.includes(p));
  for (const p of left)
    report.failed.push({ what: `process ${p}`, error: "still alive after SIGKILL" });

  const done = (r: ResourceRecord) => {
    report.removed.push(`${r.kind} ${r.id}`);
    dropResource(state, r);
  };
  for (const r of teardownOrder(state.resources)) {
    try {
      switch (r.kind) {
        case "process":
          if (r.pid === undefined || !isAlive(r.pid, r.startTime, roots.procfs)) done(r);
          else report.failed.push({ what: `process ${r.id}`, error: `pid ${r.pid} still alive` });
          break;
        case "link":
          if (linkExists(r.id, net)) await ip(["link", "del", r.id]);
          done(r);
          break;
        case "netns":
          if (netnsExists(r.id, net)) await ip(["netns", "del", r.id]);
          done(r);
          break;
        case "cgroup":
          await removeCgroup(r.id, { tags: testbedTags(state), procfs: roots.procfs });
          done(r);
          break;
        case "file":
          if (existsSync(r.id)) unlinkSync(r.id);
          done(r);
          break;
      }
    } catch (e) {
      report.failed.push({ what: `${r.kind} ${r.id}`, error: errMsg(e) });
    }
    writeState(state);
  }

  if (state.resources.length === 0) {
    state.partitions = [];
    state.hogs = [];
    unlinkSync(stateFile);
  } else {
    writeState(state);
  }
  report.clean = state.resources.length === 0 && report.failed.length === 0;
  return report;
}
