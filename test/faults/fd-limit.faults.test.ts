// `weir run` with 10,000 host-counter partitions under RLIMIT_NOFILE 4096: each partition's
// sensor holds its cgroup's CPU counters and its interface's four packet counters, and its
// actuator holds its cgroup's knobs — about ten descriptors a partition, 100,000 in all. Their
// cgroups and interfaces are a fixture tree in the kernel's v1 and sysfs file formats under
// `roots` (the actuator writes plain files there). What must hold: no partition fails (no
// EMFILE), the descriptors weir holds stay below the limit with room for its sockets (the API
// answers), and SIGTERM restores every value it found.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  apiBase,
  FIXTURE_REMOVAL_TIMEOUT_MS,
  fixtureHost,
  startWeir,
  stopWeir,
  until,
  type Weir,
} from "./harness.ts";
import { recordRow } from "./reliability.ts";

const FILE = "test/faults/fd-limit.faults.test.ts";
const TEST = "10,000 host-counter partitions under RLIMIT_NOFILE 4096";
const N = 10_000;
const NOFILE = 4096;
const dir = mkdtempSync(path.join(tmpdir(), "weirf-fds-"));
let weir: Weir | null = null;

afterAll(async () => {
  if (weir) await stopWeir(weir, "SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}, FIXTURE_REMOVAL_TIMEOUT_MS);

describe.skipIf(process.getuid?.() !== 0)("descriptors at 10,000 partitions", () => {
  it(TEST, async () => {
    fixtureHost(dir, N, { interfaces: true });
    const cfg = path.join(dir, "weir.yaml");
    const lines = [
      "intervalMs: 1000",
      "capacity: { cpus: 2 }",
      `roots: { cgroupfs: ${dir}/cgroupfs, sysfs: ${dir}/sysfs, procfs: ${dir}/procfs }`,
      'api: { listen: "127.0.0.1:0" }',
      "partitions:",
    ];
    for (let i = 0; i < N; i++)
      lines.push(`  - { name: p${i}, cgroup: p${i}, interfaces: [p${i}], weight: ${1 + (i % 7)} }`);
    writeFileSync(cfg, `${lines.join("\n")}\n`);
    const w = startWeir(cfg, { keepRecords: 3, openFilesLimit: NOFILE });
    weir = w;
    expect(await until(() => w.records.length >= 3, 150_000), w.stderr()).toBe(true);
    const fds = readdirSync(`/proc/${w.child.pid}/fd`).length;
    const healthy = (await fetch(`${await apiBase(w)}/healthz`)).ok;
    const last = w.last()!;
    const notOk = last.partitions.filter((p) => p.status !== "ok" || p.error);
    const codes = [...new Set(notOk.map((p) => p.error?.code ?? p.status))];
    const sharesWritten = new Set(
      [0, 1, 2, 3].map((i) =>
        readFileSync(path.join(dir, `cgroupfs/cpu/p${i}/cpu.shares`), "utf8"),
      ),
    ).size;
    const exit = await stopWeir(w);
    const notRestored = [];
    for (let i = 0; i < N; i++)
      if (readFileSync(path.join(dir, `cgroupfs/cpu/p${i}/cpu.shares`), "utf8").trim() !== "1024")
        notRestored.push(`p${i}`);
    const emfile = (w.stderr().match(/EMFILE/g) ?? []).length;
    const free = NOFILE - fds;
    const holds =
      notOk.length === 0 &&
      emfile === 0 &&
      free >= 512 &&
      healthy &&
      exit.code === 0 &&
      notRestored.length === 0;
    recordRow({
      id: "14-fd-limit",
      file: FILE,
      test: TEST,
      fault: `${N.toLocaleString("en")} host-counter partitions (cgroup CPU counters, one interface's four packet counters, the cgroup's knobs: about ten files each, fixture trees in the kernel's formats) under RLIMIT_NOFILE ${NOFILE}`,
      mustHold:
        "no partition fails (no EMFILE); weir holds at most the limit less 512 descriptors, so its API still accepts; SIGTERM restores every value found",
      observed: `last of ${last.cycle} cycles: ${N - notOk.length} of ${N} partitions ok${codes.length ? ` (others: ${codes.join(", ")})` : ""}, cycle ${last.timingsMs.total.toFixed(0)} ms; ${fds} descriptors open (${free} free); EMFILE in the log ${emfile}×; weights written (${sharesWritten} distinct cpu.shares in p0..p3); healthz ${healthy}; SIGTERM exit ${exit.code}, ${N - notRestored.length} of ${N} cpu.shares restored to 1024`,
      holds,
    });
    expect({ notOk: notOk.length, codes, emfile }).toEqual({ notOk: 0, codes: [], emfile: 0 });
    expect(free).toBeGreaterThanOrEqual(512);
    expect(healthy).toBe(true);
    expect(exit.code).toBe(0);
    expect(notRestored).toEqual([]);
  });
});
