// `weir testbed up|down|status|serve`: real partitions on this host (root), see src/testbed.
import type { Command } from "commander";
import { ErrorCodes, WeirError } from "../../core/errors.ts";
import { port } from "../options.ts";

const int =
  (field: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) {
      throw new WeirError(
        ErrorCodes.CONFIG_INVALID,
        `'${field}' must be an integer >= 0: current value is ${JSON.stringify(v)}`,
      );
    }
    return n;
  };

interface CommonOpts {
  prefix: string;
  stateFile?: string;
  json?: boolean;
}

const pad = (rows: string[][]): string => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
};

export function register(program: Command): void {
  const tb = program
    .command("testbed")
    .description(
      "Real partitions on this host: network namespaces, veth pairs, cgroups, packet servers (root).",
    )
    .addHelpText(
      "after",
      [
        "",
        "`up` makes, per network partition, a namespace <prefix>-<name>, a veth pair with a /30 out of",
        "198.18.0.0/15 (host side .1, namespace side .2), a cgroup <prefix>/<name> and a packet",
        "server inside both (UDP, and closed-loop TCP on the same port number: `weir load --tcp`);",
        "batch hogs get a cgroup and a CPU burner. Everything is recorded in the",
        "state file before it is created; `down` removes exactly that, also after a crash.",
        "Servers and hogs exit by themselves after --max-lifetime.",
      ].join("\n"),
    );

  const withCommon = (c: Command) =>
    c
      .option("--prefix <name>", "name prefix of everything created", "weir")
      .option("--state-file <file>", "state file (default /run/weir/testbed-<prefix>.json)")
      .option("--json", "print JSON");

  withCommon(tb.command("up"))
    .description("Bring a testbed up (idempotent).")
    .option(
      "--partitions <n|names>",
      "network partitions: a count (p1..pN) or comma-separated names",
      "3",
    )
    .option("--hogs <n|names>", "batch hogs: a count (hog1..hogN) or comma-separated names", "0")
    .option("--hog-cpus <n>", "busy threads per hog", int("hog-cpus"), 1)
    .option("--cost-rounds <n>", "SHA-256 rounds per request", int("cost-rounds"), 600)
    .option("--port <n>", "UDP port of the servers", port("port"), 9000)
    .option("--max-lifetime <duration>", "servers and hogs exit after this long", "1h")
    .option(
      "--no-steady-heap",
      "leave the servers' malloc at its defaults (default: a steady heap, so the host's memory reclaim does not stall a server in brk)",
    )
    .option(
      "--group-cpu-shares <n>",
      "cpu.shares of the <prefix> cgroup against the rest of the host",
      int("group-cpu-shares"),
    )
    .option(
      "--vms <n|names>",
      "QEMU guests instead of namespaces (src/vm): a count (p1..pN) or names; each runs the packet server and `weir agent`",
    )
    .option(
      "--max-cpus <n>",
      "with --vms: vCPUs a guest may be hot-plugged up to",
      int("max-cpus"),
      2,
    )
    .option(
      "--slot-dir <dir>",
      "with --vms: a running manager's transport.shm.path (each guest's ivshmem region is its slot)",
    )
    .action(
      async (
        o: CommonOpts & {
          partitions: string;
          hogs: string;
          hogCpus: number;
          costRounds: number;
          port: number;
          maxLifetime: string;
          steadyHeap: boolean;
          groupCpuShares?: number;
          vms?: string;
          maxCpus: number;
          slotDir?: string;
        },
      ) => {
        const { testbedUp } = await import("../../testbed/testbed.ts");
        const { parseDurationMs } = await import("../../testbed/schedule.ts");
        if (o.vms !== undefined) {
          await vmsUpCommand(o, parseDurationMs(o.maxLifetime, "max-lifetime"));
          return;
        }
        const list = (v: string, field: string) =>
          /^\d+$/.test(v)
            ? int(field)(v)
            : v
                .split(",")
                .map((s) => s.trim())
                .filter(Boolean);
        const parts = list(o.partitions, "partitions");
        const hogs = list(o.hogs, "hogs");
        const state = await testbedUp({
          prefix: o.prefix,
          partitions: typeof parts === "number" ? parts : parts.map((name) => ({ name })),
          hogs:
            typeof hogs === "number"
              ? Array.from({ length: hogs }, (_, i) => ({ name: `hog${i + 1}`, cpus: o.hogCpus }))
              : hogs.map((name) => ({ name, cpus: o.hogCpus })),
          costRounds: o.costRounds,
          port: o.port,
          maxLifetimeMs: parseDurationMs(o.maxLifetime, "max-lifetime"),
          steadyServerHeap: o.steadyHeap,
          ...(o.stateFile ? { stateFile: o.stateFile } : {}),
          ...(o.groupCpuShares === undefined ? {} : { groupCpuShares: o.groupCpuShares }),
          log: o.json ? () => {} : (line) => process.stderr.write(`${line}\n`),
        });
        if (o.json) {
          process.stdout.write(`${JSON.stringify(state, null, 2)}\n`);
          return;
        }
        const rows = [["PARTITION", "NETNS", "HOST IF", "HOST ADDR", "SERVER", "CGROUP", "PID"]];
        for (const p of state.partitions) {
          rows.push([
            p.name,
            p.netns,
            p.hostIf,
            p.hostAddr,
            `${p.nsAddr}:${p.port}`,
            p.cgroup,
            String(p.serverPid ?? "-"),
          ]);
        }
        for (const h of state.hogs)
          rows.push([
            h.name,
            "-",
            "-",
            "-",
            `(hog, ${h.cpus} cpu)`,
            h.cgroup,
            String(h.pid ?? "-"),
          ]);
        process.stdout.write(
          `${pad(rows)}\ncgroup v${state.cgroup.version}; state ${state.stateFile}; processes exit by ${new Date(state.expiresAtEpochMs).toISOString()}\n` +
            `load it:  weir load --prefix ${state.prefix} --schedule 500 --duration 10s\n` +
            `remove:   weir testbed down --prefix ${state.prefix}\n`,
        );
      },
    );

  withCommon(tb.command("down"))
    .description(
      "Remove exactly what the state file records (processes, veths, namespaces, cgroups).",
    )
    .action(async (o: CommonOpts) => {
      const { testbedDown } = await import("../../testbed/testbed.ts");
      const { defaultStateFile } = await import("../../testbed/names.ts");
      const file = o.stateFile ?? defaultStateFile(o.prefix);
      if (o.stateFile === undefined) await vmsDownCommand(o);
      const r = await testbedDown(file);
      if (o.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      else if (r.prefix === null) process.stdout.write(`nothing recorded in ${file}\n`);
      else {
        process.stdout.write(
          `removed ${r.removed.length} things, stopped ${r.killed.length} processes\n`,
        );
        for (const f of r.failed) process.stdout.write(`FAILED ${f.what}: ${f.error}\n`);
        if (!r.clean) process.stdout.write(`left recorded in ${file}; run down again\n`);
      }
      if (!r.clean) process.exitCode = 1;
    });

  withCommon(tb.command("status"))
    .description(
      "What the state file records against what exists, and anything carrying the prefix it lacks.",
    )
    .action(async (o: CommonOpts) => {
      const { testbedStatus } = await import("../../testbed/status.ts");
      const { defaultStateFile } = await import("../../testbed/names.ts");
      const s = testbedStatus(o.stateFile ?? defaultStateFile(o.prefix), { prefix: o.prefix });
      if (o.json) {
        process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
        return;
      }
      const rows = [["KIND", "ID", "OWNER", "RECORD", "EXISTS"]];
      for (const r of s.resources) {
        rows.push([
          r.kind,
          r.pid ? `${r.id} (pid ${r.pid})` : r.id,
          r.owner || "-",
          r.recorded,
          r.exists ? "yes" : "no",
        ]);
      }
      process.stdout.write(
        `${s.recorded ? "" : `no state file ${s.stateFile}\n`}${rows.length > 1 ? `${pad(rows)}\n` : ""}` +
          `${s.healthy ? "healthy: everything recorded exists" : s.nothingLeft ? "nothing exists" : "INCOMPLETE: see the rows above"}\n`,
      );
    });

  tb.command("serve")
    .description("Run the packet server here (the testbed runs it inside each partition).")
    .requiredOption("--port <n>", "UDP port", port("port"))
    .option("--tcp-port <n|off>", "TCP port of the closed-loop server (default: --port)")
    .option("--host <addr>", "address to bind (default all)")
    .option("--cost-rounds <n>", "SHA-256 rounds per request", int("cost-rounds"), 600)
    .option("--max-lifetime <duration>", "exit after this long", "1h")
    .option(
      "--steady-heap",
      "keep this process's heap steady: malloc never trims it and grows it 64 MiB at a time",
    )
    .action(
      async (o: {
        port: number;
        tcpPort?: string;
        host?: string;
        costRounds: number;
        maxLifetime: string;
        steadyHeap?: boolean;
      }) => {
        const { runPacketServer } = await import("../../testbed/serve.ts");
        const { parseDurationMs } = await import("../../testbed/schedule.ts");
        await runPacketServer({
          port: o.port,
          ...(o.tcpPort === undefined
            ? {}
            : { tcpPort: o.tcpPort === "off" ? null : port("tcp-port")(o.tcpPort) }),
          costRounds: o.costRounds,
          maxLifetimeMs: parseDurationMs(o.maxLifetime, "max-lifetime"),
          ...(o.host ? { host: o.host } : {}),
          ...(o.steadyHeap ? { steadyHeap: true } : {}),
        });
      },
    );
}

/** `weir testbed up --vms`: QEMU guests as partitions (src/vm/vms.ts), each with a packet server. */
async function vmsUpCommand(
  o: CommonOpts & {
    vms?: string;
    maxCpus: number;
    slotDir?: string;
    costRounds: number;
    port: number;
  },
  maxLifetimeMs: number,
): Promise<void> {
  const { vmsUp } = await import("../../vm/vms.ts");
  const v = o.vms ?? "2";
  const vms = /^\d+$/.test(v)
    ? int("vms")(v)
    : v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
  const st = await vmsUp({
    prefix: o.prefix,
    vms,
    maxCpus: o.maxCpus,
    maxLifetimeMs,
    packetServer: { port: o.port, costRounds: o.costRounds },
    ...(o.slotDir ? { slotDir: o.slotDir } : {}),
    ...(o.stateFile ? { stateFile: o.stateFile } : {}),
    log: o.json ? () => {} : (line) => process.stderr.write(`${line}\n`),
  });
  if (o.json) {
    process.stdout.write(`${JSON.stringify(st, null, 2)}\n`);
    return;
  }
  const rows = [["GUEST", "NETNS", "TAP ADDR", "SERVER", "CGROUP", "QEMU PID", "QMP"]];
  for (const vm of st.vms)
    rows.push([
      vm.name,
      vm.netns,
      vm.hostAddr,
      `${vm.guestAddr}:${o.port}`,
      vm.cgroup,
      String(vm.qemuPid ?? "-"),
      vm.qmpSocket,
    ]);
  process.stdout.write(
    `${pad(rows)}\nstate ${st.stateFile}; guests power off by ${new Date(st.expiresAtEpochMs).toISOString()}\n` +
      "a guest's serial console is <QMP without .qmp>.serial.log; load one from inside its namespace:\n" +
      `  ip netns exec ${st.vms[0]?.netns ?? "<netns>"} weir load --target ${st.vms[0]?.name ?? "p1"}=${st.vms[0]?.guestAddr ?? "<addr>"}:${o.port}\n` +
      `remove:   weir testbed down --prefix ${st.prefix}\n`,
  );
}

/** `weir testbed down` also removes the prefix's VM testbed, when one is recorded. */
async function vmsDownCommand(o: CommonOpts): Promise<void> {
  const { existsSync } = await import("node:fs");
  const { defaultVmStateFile } = await import("../../vm/state.ts");
  const file = defaultVmStateFile(o.prefix);
  if (!existsSync(file)) return;
  const { vmsDown } = await import("../../vm/down.ts");
  const r = await vmsDown(file);
  if (o.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else {
    process.stdout.write(
      `guests: removed ${r.removed.length} things, stopped ${r.killed.length} processes\n`,
    );
    for (const f of r.failed) process.stdout.write(`FAILED ${f.what}: ${f.error}\n`);
  }
  if (!r.clean) process.exitCode = 1;
}
