// A testbed of real partitions on this host: per network partition a namespace, a veth
// pair (198.18.0.0/15), a cgroup and a packet server inside both; optional "batch hog"
// partitions that only burn CPU. Everything created is recorded first (state.ts), so
// `testbedDown` removes exactly that, also after a crash or SIGKILL of `testbedUp`.
import { type Dirent, existsSync, mkdirSync, readdirSync, rmdirSync, unlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type CgroupLayout, detectCgroupLayout } from "../cgroup/layout.ts";
import { cgroupDirs, hierarchies } from "../cgroup/paths.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { RUNS_COMPILED, siblingModuleUrl } from "../core/package-files.ts";
import { allocateBlocks, blockAddresses, blockOf, startBlockFor, usedBlocks } from "./addresses.ts";
import {
  cgroupProcs,
  detectTestbedLayout,
  enableCpuController,
  setGroupShares,
} from "./cgroups.ts";
import { probeServer } from "./load.ts";
import { withFileLock } from "./lock.ts";
import {
  cgroupRel,
  defaultHogNames,
  defaultPartitionNames,
  defaultStateFile,
  hostIfName,
  NS_IFNAME,
  netnsName,
  processTag,
  TAG_ARG,
  tagArg,
  validatePartitionName,
  validatePrefix,
} from "./names.ts";
import {
  defaultNetRoots,
  disableIpv6InNetns,
  disableIpv6OnHostLink,
  hostAddresses,
  ip,
  linkExists,
  listNetns,
  netnsExists,
} from "./net.ts";
import {
  isAlive,
  pidsWithArgMatching,
  readCmdline,
  spawnInCgroups,
  stopProcesses,
} from "./procs.ts";
import {
  dropResource,
  findResource,
  markCreated,
  newState,
  planResource,
  type ResourceKind,
  type ResourceRecord,
  readState,
  recordThenCreate,
  type TestbedHog,
  type TestbedPartition,
  type TestbedState,
  teardownOrder,
  writeState,
} from "./state.ts";

export interface TestbedRoots {
  cgroupfs: string;
  procfs: string;
  sysfs: string;
  netnsDir: string;
}

export const defaultTestbedRoots: TestbedRoots = {
  cgroupfs: "/sys/fs/cgroup",
  procfs: "/proc",
  sysfs: "/sys",
  netnsDir: "/run/netns",
};

export interface PartitionRequest {
  /** [a-z][a-z0-9]{0,15}, no dash. */
  name: string;
  costRounds?: number;
  port?: number;
}

export interface HogRequest {
  name: string;
  /** Busy threads (default 1). */
  cpus?: number;
}

export interface TestbedOptions {
  /** Name prefix of everything created (default "weir"); tests use unique ones. */
  prefix?: string;
  /** A count (names p1..pN) or named partitions. */
  partitions: number | PartitionRequest[];
  /** A count (names hog1..hogN) or named hogs. Default none. */
  hogs?: number | HogRequest[];
  /** SHA-256 rounds per request for every partition without its own (default 600). */
  costRounds?: number;
  /** UDP port of every packet server without its own (default 9000). */
  port?: number;
  /** Servers and hogs exit by themselves after this long (default 1 h). */
  maxLifetimeMs?: number;
  /** Default /run/weir/testbed-<prefix>.json. */
  stateFile?: string;
  /** Lock that serialises address allocation between testbeds (default /run/weir/addr.lock). */
  lockFile?: string;
  /** How long to wait for every server to answer a probe (default 60 s). */
  readyTimeoutMs?: number;
  /**
   * CPU share of the whole testbed (the <prefix> cgroup) against everything else on the
   * host, on the v1 cpu.shares scale (1024 = one ordinary process; v2 converts to
   * cpu.weight). Unset: left at the kernel's default.
   */
  groupCpuShares?: number;
  /** On a failure, tear down what this call recorded before throwing (default true). */
  cleanupOnError?: boolean;
  roots?: Partial<TestbedRoots>;
  log?: (line: string) => void;
  now?: () => number;
}

// The packet server's entry: compiled JavaScript runs as it is; the TypeScript sources need
// tsx's loader in the child too.
const SERVE_ENTRY = fileURLToPath(siblingModuleUrl("serve-entry", import.meta.url));
const serveEntryArgv = (): string[] =>
  RUNS_COMPILED
    ? [SERVE_ENTRY]
    : ["--import", pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href, SERVE_ENTRY];

// Burns `cpus` threads until its deadline; argv: [maxLifetimeMs, cpus, --weir-tag=...].
const HOG_SCRIPT = [
  'const { Worker } = require("node:worker_threads");',
  "const end = Date.now() + Number(process.argv[1]);",
  'const burn = "const end = " + end + "; let x = 0; while (Date.now() < end) { for (let i = 0; i < 1e5; i++) x += i; }";',
  "for (let i = 1; i < Number(process.argv[2]); i++) new Worker(burn, { eval: true });",
  "eval(burn);",
].join("\n");

export function requireRoot(what: string): void {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    throw new WeirError(
      ErrorCodes.NOT_ROOT,
      `${what} needs root (network namespaces, veth, cgroups)`,
    );
  }
}

const logFileFor = (stateFile: string, name: string) =>
  `${stateFile.replace(/\.json$/, "")}.${name}.log`;

function normalize(opts: TestbedOptions): {
  partitions: Required<PartitionRequest>[];
  hogs: Required<HogRequest>[];
} {
  const costRounds = opts.costRounds ?? 600;
  const port = opts.port ?? 9000;
  const parts: PartitionRequest[] =
    typeof opts.partitions === "number"
      ? defaultPartitionNames(opts.partitions).map((name) => ({ name }))
      : opts.partitions;
  const hogs: HogRequest[] =
    opts.hogs === undefined
      ? []
      : typeof opts.hogs === "number"
        ? defaultHogNames(opts.hogs).map((name) => ({ name }))
        : opts.hogs;
  const seen = new Set<string>();
  for (const n of [...parts.map((p) => p.name), ...hogs.map((h) => h.name)]) {
    validatePartitionName(n);
    if (seen.has(n))
      throw new WeirError(
        ErrorCodes.CONFIG_INVALID,
        `partition name ${JSON.stringify(n)} is used twice`,
      );
    seen.add(n);
  }
  return {
    partitions: parts.map((p) => ({
      name: p.name,
      costRounds: p.costRounds ?? costRounds,
      port: p.port ?? port,
    })),
    hogs: hogs.map((h) => ({ name: h.name, cpus: h.cpus ?? 1 })),
  };
}

async function ensureProcess(
  state: TestbedState,
  tag: string,
  owner: string,
  argv: string[],
  dirs: string[],
  logFile: string,
  roots: TestbedRoots,
): Promise<{ pid: number; started: boolean }> {
  const rec = findResource(state, "process", tag);
  if (rec?.pid !== undefined && isAlive(rec.pid, rec.startTime, roots.procfs))
    return { pid: rec.pid, started: false };
  // A process with our tag that the record does not hold (started just before a crash): stop it.
  const stale = [...pidsWithArgMatching((a) => a === tagArg(tag), roots.procfs).keys()];
  if (stale.length > 0) await stopProcesses(stale, { procfs: roots.procfs });
  planResource(state, "file", logFile, owner);
  const planned = planResource(state, "process", tag, owner);
  planned.status = "planned";
  planned.argv = argv;
  planned.cgroupDirs = dirs;
  delete planned.pid;
  delete planned.startTime;
  writeState(state);
  const sp = spawnInCgroups(argv, dirs, logFile, roots.procfs);
  markCreated(state, "file", logFile);
  markCreated(state, "process", tag, { pid: sp.pid, startTime: sp.startTime });
  writeState(state);
  return { pid: sp.pid, started: true };
}

async function ensureNetwork(
  p: TestbedPartition,
  state: TestbedState,
  roots: TestbedRoots,
): Promise<void> {
  const net = {
    ...defaultNetRoots,
    netnsDir: roots.netnsDir,
    sysfs: roots.sysfs,
    procfs: roots.procfs,
  };
  await recordThenCreate(
    state,
    "netns",
    p.netns,
    p.name,
    () => netnsExists(p.netns, net),
    () => ip(["netns", "add", p.netns]),
  );
  await disableIpv6InNetns(p.netns, net);
  await recordThenCreate(
    state,
    "link",
    p.hostIf,
    p.name,
    () => linkExists(p.hostIf, net),
    () => ip(["link", "add", p.hostIf, "type", "veth", "peer", "name", p.nsIf, "netns", p.netns]),
  );
  disableIpv6OnHostLink(p.hostIf, net);
  await ip(["addr", "replace", `${p.hostAddr}/${p.prefixLen}`, "dev", p.hostIf]);
  await ip(["link", "set", p.hostIf, "up"]);
  await ip(["-n", p.netns, "addr", "replace", `${p.nsAddr}/${p.prefixLen}`, "dev", p.nsIf]);
  await ip(["-n", p.netns, "link", "set", p.nsIf, "up"]);
  await ip(["-n", p.netns, "link", "set", "lo", "up"]);
}

async function ensureCgroup(state: TestbedState, dir: string, owner: string): Promise<void> {
  await recordThenCreate(
    state,
    "cgroup",
    dir,
    owner,
    () => existsSync(dir),
    () => mkdirSync(dir),
  );
}

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
  const roots: TestbedRoots = { ...defaultTestbedRoots, ...opts.roots };
  const now = opts.now ?? Date.now;
  const log = opts.log ?? (() => {});
  const maxLifetimeMs = opts.maxLifetimeMs ?? 3_600_000;
  const want = normalize(opts);

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
  const st = state;
  writeState(st);

  try {
    // Shared cgroup parents: <hierarchy>/<prefix>.
    for (const dir of cgroupDirs(st.cgroup, prefix)) {
      if (st.cgroup.version === 2) enableCpuController(st.cgroup.root);
      await ensureCgroup(st, dir, "");
      if (st.cgroup.version === 2) enableCpuController(dir);
    }
    if (opts.groupCpuShares !== undefined) setGroupShares(st.cgroup, prefix, opts.groupCpuShares);

    // Addresses and links under a host-wide lock, so parallel testbeds never share a /30.
    await withFileLock(opts.lockFile ?? "/run/weir/addr.lock", async () => {
      const assigned = await hostAddresses();
      const used = usedBlocks(
        assigned.filter((a) => !st.partitions.some((p) => p.hostIf === a.ifname)),
      );
      for (const p of st.partitions) {
        const clash = assigned.find(
          (a) => a.ifname !== p.hostIf && usedBlocks([a]).has(blockOf(p.hostAddr)),
        );
        if (clash) {
          throw new WeirError(
            ErrorCodes.TESTBED,
            `${p.hostAddr}/${p.prefixLen} of ${p.name} is now used by ${clash.ifname}`,
          );
        }
        used.add(blockOf(p.hostAddr));
      }
      const missing = want.partitions.filter((w) => !st.partitions.some((p) => p.name === w.name));
      const blocks = allocateBlocks(missing.length, used, startBlockFor(prefix));
      missing.forEach((w, i) => {
        const a = blockAddresses(blocks[i]!);
        const rel = cgroupRel(prefix, w.name);
        const hostIf = hostIfName(prefix, w.name);
        st.partitions.push({
          name: w.name,
          netns: netnsName(prefix, w.name),
          hostIf,
          nsIf: NS_IFNAME,
          hostAddr: a.hostAddr,
          nsAddr: a.nsAddr,
          prefixLen: a.prefixLen,
          port: w.port,
          costRounds: w.costRounds,
          cgroup: rel,
          cgroupDirs: cgroupDirs(st.cgroup, rel),
          serverPid: null,
          logFile: logFileFor(stateFile, w.name),
          sensor: {
            cgroup: rel,
            interfaces: [{ name: hostIf, offered: "tx", served: "rx" }],
            netnsInterfaces: [{ name: NS_IFNAME, offered: "rx", served: "tx" }],
          },
        });
      });
      writeState(st);
      for (const p of st.partitions) {
        if (!want.partitions.some((w) => w.name === p.name)) continue;
        await ensureNetwork(p, st, roots);
        log(
          `partition ${p.name}: netns ${p.netns}, ${p.hostIf} ${p.hostAddr} <-> ${p.nsIf} ${p.nsAddr}`,
        );
      }
    });

    // cgroups and packet servers.
    let expires = st.expiresAtEpochMs;
    for (const p of st.partitions) {
      if (!want.partitions.some((w) => w.name === p.name)) continue;
      for (const d of p.cgroupDirs) await ensureCgroup(st, d, p.name);
      const argv = [
        "nsenter",
        `--net=${join(roots.netnsDir, p.netns)}`,
        "--",
        process.execPath,
        ...serveEntryArgv(),
        "--port",
        String(p.port),
        "--cost-rounds",
        String(p.costRounds),
        "--max-lifetime-ms",
        String(maxLifetimeMs),
        tagArg(processTag(prefix, p.name)),
      ];
      const r = await ensureProcess(
        st,
        processTag(prefix, p.name),
        p.name,
        argv,
        p.cgroupDirs,
        p.logFile,
        roots,
      );
      p.serverPid = r.pid;
      p.sensor.pid = r.pid;
      if (r.started) expires = Math.max(expires, now() + maxLifetimeMs);
      writeState(st);
      log(
        `partition ${p.name}: cgroup ${p.cgroup}, server pid ${r.pid}${r.started ? "" : " (kept)"}`,
      );
    }

    // Batch hogs: a cgroup and a CPU burner, no network.
    for (const w of want.hogs) {
      let h = st.hogs.find((x) => x.name === w.name);
      if (!h) {
        const rel = cgroupRel(prefix, w.name);
        h = {
          name: w.name,
          cgroup: rel,
          cgroupDirs: cgroupDirs(st.cgroup, rel),
          pid: null,
          cpus: w.cpus,
          logFile: logFileFor(stateFile, w.name),
        };
        st.hogs.push(h);
        writeState(st);
      }
      for (const d of h.cgroupDirs) await ensureCgroup(st, d, h.name);
      const argv = [
        process.execPath,
        "-e",
        HOG_SCRIPT,
        String(maxLifetimeMs),
        String(h.cpus),
        tagArg(processTag(prefix, h.name)),
      ];
      const r = await ensureProcess(
        st,
        processTag(prefix, h.name),
        h.name,
        argv,
        h.cgroupDirs,
        h.logFile,
        roots,
      );
      h.pid = r.pid;
      if (r.started) expires = Math.max(expires, now() + maxLifetimeMs);
      writeState(st);
      log(`hog ${h.name}: cgroup ${h.cgroup}, pid ${r.pid}${r.started ? "" : " (kept)"}`);
    }
    st.expiresAtEpochMs = expires;
    writeState(st);

    // Ready when every server answers.
    const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
    const live = st.partitions.filter((p) => want.partitions.some((w) => w.name === p.name));
    const ready = await Promise.all(
      live.map((p) => probeServer(p.nsAddr, p.port, { timeoutMs: readyTimeoutMs })),
    );
    const notReady = live.filter((_, i) => !ready[i]);
    if (notReady.length > 0) {
      throw new WeirError(
        ErrorCodes.TESTBED,
        `packet server of ${notReady.map((p) => p.name).join(", ")} did not answer within ${readyTimeoutMs} ms (logs: ${notReady.map((p) => p.logFile).join(", ")})`,
      );
    }
    log(
      `testbed ${prefix} up: ${live.length} partitions, ${want.hogs.length} hogs, state ${stateFile}`,
    );
    return st;
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

const errMsg = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Pids of the testbed's processes: recorded pid (if still the same process), tagged members of its cgroups, tagged processes anywhere. */
function testbedPids(state: TestbedState, procfs: string): number[] {
  const tags = new Set(
    state.resources.filter((r) => r.kind === "process").map((r) => tagArg(r.id)),
  );
  const pids = new Set<number>();
  for (const r of state.resources) {
    if (r.kind === "process" && r.pid !== undefined && isAlive(r.pid, r.startTime, procfs))
      pids.add(r.pid);
    if (r.kind === "cgroup") {
      for (const pid of cgroupProcs(r.id)) if (isTagged(pid, tags, procfs)) pids.add(pid);
    }
  }
  for (const pid of pidsWithArgMatching((a) => tags.has(a), procfs).keys()) pids.add(pid);
  return [...pids];
}

function isTagged(pid: number, tags: Set<string>, procfs: string): boolean {
  return readCmdline(pid, procfs)?.some((a) => tags.has(a)) ?? false;
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
  const roots: TestbedRoots = { ...defaultTestbedRoots, ...opts.roots };
  const net = {
    ...defaultNetRoots,
    netnsDir: roots.netnsDir,
    sysfs: roots.sysfs,
    procfs: roots.procfs,
  };
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
          await removeCgroup(r.id, state, roots.procfs);
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

/** rmdir a cgroup dir; while it is busy, stop tagged processes still in it and retry (up to ~3 s). */
async function removeCgroup(dir: string, state: TestbedState, procfs: string): Promise<void> {
  const tags = new Set(
    state.resources.filter((r) => r.kind === "process").map((r) => tagArg(r.id)),
  );
  for (let attempt = 0; ; attempt++) {
    if (!existsSync(dir)) return;
    try {
      rmdirSync(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || attempt >= 30) {
        const members = cgroupProcs(dir);
        throw new WeirError(
          ErrorCodes.TESTBED,
          `cannot remove cgroup ${dir}: ${errMsg(e)}${members.length ? ` (still holds pids ${members.join(" ")})` : ""}`,
        );
      }
      const tagged = cgroupProcs(dir).filter((p) => isTagged(p, tags, procfs));
      if (tagged.length) await stopProcesses(tagged, { graceMs: 500, procfs });
      else await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export interface ResourceStatus {
  kind: ResourceKind;
  id: string;
  owner: string;
  /** "planned"/"created" from the record, or "unrecorded" (carries the prefix but is not in the record). */
  recorded: "planned" | "created" | "unrecorded";
  exists: boolean;
  pid?: number;
}

export interface TestbedStatus {
  stateFile: string;
  prefix: string;
  /** The state file exists. */
  recorded: boolean;
  cgroup: CgroupLayout | null;
  resources: ResourceStatus[];
  partitions: TestbedPartition[];
  hogs: TestbedHog[];
  /** Every recorded resource exists (processes alive) and nothing unrecorded carries the prefix. */
  healthy: boolean;
  /** Nothing recorded exists and nothing unrecorded carries the prefix. */
  nothingLeft: boolean;
}

/** What the record says against what exists, plus anything carrying the prefix that the record lacks. */
export function testbedStatus(
  stateFile: string,
  opts: { prefix?: string; roots?: Partial<TestbedRoots> } = {},
): TestbedStatus {
  const roots: TestbedRoots = { ...defaultTestbedRoots, ...opts.roots };
  const net = {
    ...defaultNetRoots,
    netnsDir: roots.netnsDir,
    sysfs: roots.sysfs,
    procfs: roots.procfs,
  };
  const state = readState(stateFile);
  const prefix = state?.prefix ?? opts.prefix;
  if (!prefix)
    throw new WeirError(ErrorCodes.TESTBED, `no state file ${stateFile} and no prefix given`);
  let layout: CgroupLayout | null = state?.cgroup ?? null;
  if (!layout) {
    try {
      layout = detectCgroupLayout(roots.cgroupfs);
    } catch {
      layout = null;
    }
  }
  const resources: ResourceStatus[] = [];
  const recorded = (kind: ResourceKind, id: string) =>
    state?.resources.some((r) => r.kind === kind && r.id === id) ?? false;
  for (const r of state?.resources ?? []) {
    let exists = false;
    switch (r.kind) {
      case "process":
        exists = r.pid !== undefined && isAlive(r.pid, r.startTime, roots.procfs);
        break;
      case "link":
        exists = linkExists(r.id, net);
        break;
      case "netns":
        exists = netnsExists(r.id, net);
        break;
      case "cgroup":
      case "file":
        exists = existsSync(r.id);
        break;
    }
    resources.push({
      kind: r.kind,
      id: r.id,
      owner: r.owner,
      recorded: r.status,
      exists,
      ...(r.pid === undefined ? {} : { pid: r.pid }),
    });
  }
  // Things carrying the prefix that the record does not name.
  const ours = (name: string) =>
    name.startsWith(`${prefix}-`) && !name.slice(prefix.length + 1).includes("-");
  for (const ns of listNetns(net)) {
    if (ours(ns) && !recorded("netns", ns))
      resources.push({ kind: "netns", id: ns, owner: "", recorded: "unrecorded", exists: true });
  }
  for (const ifname of listLinks(roots.sysfs)) {
    if (ours(ifname) && !recorded("link", ifname))
      resources.push({ kind: "link", id: ifname, owner: "", recorded: "unrecorded", exists: true });
  }
  if (layout) {
    for (const h of hierarchies(layout)) {
      const top = join(h, prefix);
      for (const dir of [top, ...subdirs(top)]) {
        if (existsSync(dir) && !recorded("cgroup", dir))
          resources.push({
            kind: "cgroup",
            id: dir,
            owner: "",
            recorded: "unrecorded",
            exists: true,
          });
      }
    }
  }
  const tagPrefix = `${TAG_ARG}${prefix}/`;
  for (const [pid, argv] of pidsWithArgMatching((a) => a.startsWith(tagPrefix), roots.procfs)) {
    const tag = argv.find((a) => a.startsWith(tagPrefix))!.slice(TAG_ARG.length);
    const rec = state?.resources.find((r) => r.kind === "process" && r.id === tag);
    if (rec?.pid === pid) continue;
    resources.push({
      kind: "process",
      id: tag,
      owner: "",
      recorded: "unrecorded",
      exists: true,
      pid,
    });
  }
  const unrecorded = resources.some((r) => r.recorded === "unrecorded");
  return {
    stateFile,
    prefix,
    recorded: state !== null,
    cgroup: layout,
    resources,
    partitions: state?.partitions ?? [],
    hogs: state?.hogs ?? [],
    healthy: state !== null && !unrecorded && resources.every((r) => r.exists),
    nothingLeft: resources.every((r) => !r.exists),
  };
}

function listLinks(sysfs: string): string[] {
  try {
    return readdirSync(join(sysfs, "class/net"));
  } catch {
    return [];
  }
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d: Dirent) => d.isDirectory())
      .map((d: Dirent) => join(dir, d.name));
  } catch {
    return [];
  }
}
