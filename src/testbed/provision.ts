// The steps of `testbedUp` (testbed.ts), in the order it runs them: the shared cgroup
// parents, addresses and network per partition (under the host-wide address lock), each
// partition's cgroup and packet server, the batch hogs, and the wait until every server
// answers. Each step records a resource in the state file before creating it
// (`recordThenCreate`), and keeps what exists and is recorded.
import { createSocket } from "node:dgram";
import { existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { controllersOf } from "../cgroup/layout.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { RUNS_COMPILED, siblingModuleUrl } from "../core/package-files.ts";
import { allocateBlocks, blockAddresses, blockOf, startBlockFor, usedBlocks } from "./addresses.ts";
import {
  enableController,
  enableCpuController,
  fillCpuset,
  setGroupShares,
  testbedCgroupDirs,
  v1CpusetRoot,
} from "./cgroups.ts";
import { withFileLock } from "./lock.ts";
import { cgroupRel, hostIfName, NS_IFNAME, netnsName, processTag, tagArg } from "./names.ts";
import {
  disableIpv6InNetns,
  disableIpv6OnHostLink,
  hostAddresses,
  ip,
  linkExists,
  netnsExists,
} from "./net.ts";
import { logFileFor, netRootsOf, type TestbedRoots, type WantedTestbed } from "./options.ts";
import { probeServer } from "./probe.ts";
import { isAlive, pidsWithArgMatching, spawnInCgroups, stopProcesses } from "./procs.ts";
import {
  findResource,
  markCreated,
  planResource,
  recordThenCreate,
  type TestbedPartition,
  type TestbedState,
  writeState,
} from "./state.ts";

/** What every step of one `testbedUp` call shares. */
export interface UpContext {
  state: TestbedState;
  want: WantedTestbed;
  prefix: string;
  stateFile: string;
  roots: TestbedRoots;
  maxLifetimeMs: number;
  now: () => number;
  log: (line: string) => void;
  /** When the testbed's servers and hogs exit by themselves: raised by each process started. */
  expiresAtEpochMs: number;
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

const wanted = (ctx: UpContext, name: string): boolean =>
  ctx.want.partitions.some((w) => w.name === name);

/** The shared cgroup parents `<hierarchy>/<prefix>` (with `+cpu` delegated on v2), and the testbed's share. */
export async function ensureParentCgroups(
  ctx: UpContext,
  groupCpuShares: number | undefined,
): Promise<void> {
  const st = ctx.state;
  const v2Cpuset = st.cgroup.version === 2 && controllersOf(st.cgroup.root).includes("cpuset");
  for (const dir of testbedCgroupDirs(st.cgroup, ctx.prefix)) {
    if (st.cgroup.version === 2) enableCpuController(st.cgroup.root);
    await ensureCgroup(st, dir, "");
    if (st.cgroup.version === 2) enableCpuController(dir);
    // the partitions get a cpuset.cpus of their own, as a container runtime gives them (v1:
    // testbedCgroupDirs' cpuset directory); where the kernel refuses, placement is unavailable
    if (v2Cpuset)
      try {
        enableController(st.cgroup.root, "cpuset");
        enableController(dir, "cpuset");
      } catch (e) {
        ctx.log(`no cpuset for the partitions (placement unavailable): ${(e as Error).message}`);
      }
  }
  if (groupCpuShares !== undefined) setGroupShares(st.cgroup, ctx.prefix, groupCpuShares);
}

/**
 * Addresses and links under a host-wide lock, so parallel testbeds never share a /30: a
 * recorded partition keeps its block (unless another interface took it since), a new one
 * gets a free block; then each wanted partition's netns and veth pair are made and set up.
 */
export async function ensureNetworks(ctx: UpContext, lockFile: string): Promise<void> {
  const st = ctx.state;
  const mixed = st.partitions.find(
    (p) => wanted(ctx, p.name) && (p.hostNetwork ?? false) !== ctx.want.hostNetwork,
  );
  if (mixed)
    throw new WeirError(
      ErrorCodes.TESTBED,
      `partition ${mixed.name} is recorded ${mixed.hostNetwork ? "on the host network" : "with a netns and veth"}; bring the testbed down first to make it the other way`,
    );
  if (ctx.want.hostNetwork) return ensureHostPartitions(ctx);
  await withFileLock(lockFile, async () => {
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
    const missing = ctx.want.partitions.filter(
      (w) => !st.partitions.some((p) => p.name === w.name),
    );
    const blocks = allocateBlocks(missing.length, used, startBlockFor(ctx.prefix));
    missing.forEach((w, i) => {
      const a = blockAddresses(blocks[i]!);
      const rel = cgroupRel(ctx.prefix, w.name);
      const hostIf = hostIfName(ctx.prefix, w.name);
      st.partitions.push({
        name: w.name,
        netns: netnsName(ctx.prefix, w.name),
        hostIf,
        nsIf: NS_IFNAME,
        hostAddr: a.hostAddr,
        nsAddr: a.nsAddr,
        prefixLen: a.prefixLen,
        port: w.port,
        costRounds: w.costRounds,
        ...(ctx.want.serverWorkers > 1 ? { serverWorkers: ctx.want.serverWorkers } : {}),
        cgroup: rel,
        cgroupDirs: testbedCgroupDirs(st.cgroup, rel),
        serverPid: null,
        logFile: logFileFor(ctx.stateFile, w.name),
        sensor: {
          cgroup: rel,
          interfaces: [{ name: hostIf, offered: "tx", served: "rx" }],
          netnsInterfaces: [{ name: NS_IFNAME, offered: "rx", served: "tx" }],
        },
      });
    });
    writeState(st);
    for (const p of st.partitions) {
      if (!wanted(ctx, p.name)) continue;
      await ensureNetwork(p, st, ctx.roots);
      ctx.log(
        `partition ${p.name}: netns ${p.netns}, ${p.hostIf} ${p.hostAddr} <-> ${p.nsIf} ${p.nsAddr}`,
      );
    }
  });
}

/**
 * Host-network partitions: no namespace, no veth, nothing to allocate under the address lock;
 * each server gets a port on 127.0.0.1 that is free for both UDP and TCP now, and is counted
 * by eBPF on its cgroup (its sensor: `packets: bpf`).
 */
async function ensureHostPartitions(ctx: UpContext): Promise<void> {
  const st = ctx.state;
  for (const w of ctx.want.partitions) {
    if (st.partitions.some((p) => p.name === w.name)) continue;
    const rel = cgroupRel(ctx.prefix, w.name);
    st.partitions.push({
      name: w.name,
      hostNetwork: true,
      netns: "",
      hostIf: "",
      nsIf: "",
      hostAddr: LOOPBACK,
      nsAddr: LOOPBACK,
      prefixLen: 8,
      port: await freeLoopbackPort(),
      costRounds: w.costRounds,
      ...(ctx.want.serverWorkers > 1 ? { serverWorkers: ctx.want.serverWorkers } : {}),
      cgroup: rel,
      cgroupDirs: testbedCgroupDirs(st.cgroup, rel),
      serverPid: null,
      logFile: logFileFor(ctx.stateFile, w.name),
      sensor: { cgroup: rel, interfaces: [], packets: [{ name: "bpf" }] },
    });
    writeState(st);
  }
}

const LOOPBACK = "127.0.0.1";

/** A port on 127.0.0.1 that nothing uses for UDP or TCP at the moment (asked of the kernel). */
async function freeLoopbackPort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = createSocket("udp4");
    const port = await new Promise<number>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(0, LOOPBACK, () => resolve(udp.address().port));
    });
    const tcp = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once("error", () => resolve(false));
      tcp.listen(port, LOOPBACK, () => resolve(true));
    });
    await new Promise<void>((r) => (ok ? tcp.close(() => r()) : r()));
    await new Promise<void>((r) => udp.close(() => r()));
    if (ok) return port;
  }
  throw new WeirError(ErrorCodes.TESTBED, "no port on 127.0.0.1 free for both UDP and TCP");
}

/** Each wanted partition's cgroup and its packet server (inside the netns and the cgroup). */
export async function ensureServers(ctx: UpContext): Promise<void> {
  const st = ctx.state;
  for (const p of st.partitions) {
    if (!wanted(ctx, p.name)) continue;
    for (const d of p.cgroupDirs) await ensureCgroup(st, d, p.name);
    const argv = [
      ...(p.hostNetwork ? [] : ["nsenter", `--net=${join(ctx.roots.netnsDir, p.netns)}`, "--"]),
      process.execPath,
      ...serveEntryArgv(),
      ...(p.hostNetwork ? ["--host", LOOPBACK] : []),
      "--port",
      String(p.port),
      "--cost-rounds",
      String(p.costRounds),
      ...((p.serverWorkers ?? 1) > 1 ? ["--workers", String(p.serverWorkers)] : []),
      ...(ctx.want.steadyServerHeap ? ["--steady-heap"] : []),
      "--max-lifetime-ms",
      String(ctx.maxLifetimeMs),
      tagArg(processTag(ctx.prefix, p.name)),
    ];
    const r = await ensureProcess(ctx, p.name, argv, p.cgroupDirs, p.logFile);
    p.serverPid = r.pid;
    p.sensor.pid = r.pid;
    writeState(st);
    ctx.log(
      `partition ${p.name}: cgroup ${p.cgroup}, server pid ${r.pid}${r.started ? "" : " (kept)"}`,
    );
  }
}

/** Batch hogs: a cgroup and a CPU burner each, no network. */
export async function ensureHogs(ctx: UpContext): Promise<void> {
  const st = ctx.state;
  for (const w of ctx.want.hogs) {
    let h = st.hogs.find((x) => x.name === w.name);
    if (!h) {
      const rel = cgroupRel(ctx.prefix, w.name);
      h = {
        name: w.name,
        cgroup: rel,
        cgroupDirs: testbedCgroupDirs(st.cgroup, rel),
        pid: null,
        cpus: w.cpus,
        logFile: logFileFor(ctx.stateFile, w.name),
      };
      st.hogs.push(h);
      writeState(st);
    }
    for (const d of h.cgroupDirs) await ensureCgroup(st, d, h.name);
    const argv = [
      process.execPath,
      "-e",
      HOG_SCRIPT,
      String(ctx.maxLifetimeMs),
      String(h.cpus),
      tagArg(processTag(ctx.prefix, h.name)),
    ];
    const r = await ensureProcess(ctx, h.name, argv, h.cgroupDirs, h.logFile);
    h.pid = r.pid;
    writeState(st);
    ctx.log(`hog ${h.name}: cgroup ${h.cgroup}, pid ${r.pid}${r.started ? "" : " (kept)"}`);
  }
}

/** Resolves with the wanted partitions once every packet server answers a probe; throws naming those that did not. */
export async function awaitServers(
  ctx: UpContext,
  readyTimeoutMs: number,
): Promise<TestbedPartition[]> {
  const live = ctx.state.partitions.filter((p) => wanted(ctx, p.name));
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
  return live;
}

/** Keep the recorded process while it lives (same pid and start time); else stop stale tagged ones and start it. */
async function ensureProcess(
  ctx: UpContext,
  owner: string,
  argv: string[],
  dirs: string[],
  logFile: string,
): Promise<{ pid: number; started: boolean }> {
  const { state, roots } = ctx;
  const tag = processTag(ctx.prefix, owner);
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
  ctx.expiresAtEpochMs = Math.max(ctx.expiresAtEpochMs, ctx.now() + ctx.maxLifetimeMs);
  return { pid: sp.pid, started: true };
}

async function ensureNetwork(
  p: TestbedPartition,
  state: TestbedState,
  roots: TestbedRoots,
): Promise<void> {
  const net = netRootsOf(roots);
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
  const cpuset = v1CpusetRoot(state.cgroup);
  if (cpuset !== null && dir.startsWith(`${cpuset}/`)) fillCpuset(dir);
}
