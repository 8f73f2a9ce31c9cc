import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isWeirError } from "../core/errors.ts";
import {
  defaultPolicyKnobs,
  KNOB_KEYS,
  type KnobKey,
  POLICY_KNOBS,
  policyKnobsFrom,
} from "../policy/knobs.ts";
import { DIRECTIVE_REFRESH_MS } from "../transport/datagram.ts";
import { configJsonSchema, parseConfig } from "./config.ts";
import { checkCgroupPaths, checkReserve } from "./config-checks.ts";
import {
  capacityCpuMillis,
  checkCapacity,
  checkManagedCpus,
  partitionSpecs,
  redactConfig,
} from "./config-runtime.ts";
import { loadConfigFile, parseConfigText } from "./load-config.ts";
import { actuatorTarget } from "./wiring.ts";

const minimal = {
  partitions: [{ name: "web", cgroup: "weir/web", interfaces: ["vweb0"] }],
};

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isWeirError(e)) return e.message;
    throw e;
  }
  throw new Error("expected an error");
}

describe("config", () => {
  it("fills defaults", () => {
    const cfg = parseConfig(minimal);
    expect(cfg.intervalMs).toBe(100);
    expect(cfg.onShutdown).toBe("restore");
    expect(cfg.policy.headroom).toBe(0.2);
    expect(cfg.partitions[0]).toMatchObject({
      kind: "network",
      min: 0,
      weight: 100,
      importance: 3,
      source: "host",
      interfaces: ["vweb0"],
    });
  });

  it("accepts CPU amounts as CPUs or millicores", () => {
    const cfg = parseConfig({
      capacity: { cpus: 2, reserve: "200m" },
      partitions: [{ name: "a", cgroup: "a", pid: 1, min: 0.25, max: "1500m" }],
    });
    expect(cfg.partitions[0]!.min).toBe(250);
    expect(cfg.partitions[0]!.max).toBe(1500);
    // 2 CPUs = 2000m, minus 200m reserve = 1800m
    expect(capacityCpuMillis(cfg, 8)).toBe(1800);
    expect(partitionSpecs(cfg, 1800)[0]).toMatchObject({ minCpuMillis: 250, maxCpuMillis: 1500 });
  });

  it("names field, rule and bad value", () => {
    const msg = errorOf(() =>
      parseConfig({ partitions: [{ name: "web", cgroup: "w", pid: 1, min: "lots" }] }),
    );
    expect(msg).toContain(
      'partitions[0].min: must be a non-negative CPU amount like 0.5 or "500m" (rule: cpu-quantity): got "lots"',
    );
  });

  it("rejects an interval out of range with the value", () => {
    const msg = errorOf(() => parseConfig({ ...minimal, intervalMs: 5 }));
    expect(msg).toMatch(/intervalMs: .*>=\s*50.*got 5/);
  });

  it("rejects unknown fields by name", () => {
    const msg = errorOf(() => parseConfig({ ...minimal, intervalMS: 100 }));
    expect(msg).toContain('(top level): unknown field(s) "intervalMS" (rule: known-fields)');
  });

  it("rejects min above max, duplicate names and missing traffic source", () => {
    const msg = errorOf(() =>
      parseConfig({
        partitions: [
          { name: "a", cgroup: "a", pid: 1, min: 1, max: 0.5 },
          { name: "a", cgroup: "b" },
        ],
      }),
    );
    expect(msg).toContain("partitions[0].max: must be >= min (1000m) (rule: min-le-max): got 0.5");
    expect(msg).toContain("partitions[1].name: must be unique (rule: unique-name)");
    expect(msg).toContain(
      "partitions[1].interfaces: a network partition read from the host needs interfaces, a pid, or a packets: source (rule: traffic-source)",
    );
  });

  it("requires an agent key and a transport for agent partitions", () => {
    const msg = errorOf(() =>
      parseConfig({ partitions: [{ name: "vm", cgroup: "vm", source: "agent" }] }),
    );
    expect(msg).toContain(
      'partitions[0].agent: is required when source is "agent" (rule: agent-key): got missing',
    );
    expect(msg).toContain(
      "transport: is required when a partition's source is agent or both (rule: agent-transport)",
    );
  });

  it("checks that guarantees fit the capacity", () => {
    const cfg = parseConfig({
      capacity: { cpus: 1 },
      partitions: [
        { name: "a", cgroup: "a", pid: 1, min: 0.75 },
        { name: "b", cgroup: "b", pid: 1, min: 0.5 },
      ],
    });
    // 750m + 500m = 1250m > 1000m
    expect(errorOf(() => checkCapacity(cfg, capacityCpuMillis(cfg, 2)))).toBe(
      "partitions[*].min: guarantees together must fit in the capacity (1000m) (rule: sum-min-le-capacity): got 1250m (the capacity is capacity.cpus minus capacity.reserve)",
    );
  });

  it("compares cgroup paths after normalisation: four spellings of one directory", () => {
    const msg = errorOf(() =>
      parseConfig({
        partitions: ["weir/web", "/weir/web", "weir//web", "weir/./web"].map((cgroup, i) => ({
          name: `p${i}`,
          cgroup,
          pid: 1,
        })),
      }),
    );
    for (const [i, raw] of [
      [1, "/weir/web"],
      [2, "weir//web"],
      [3, "weir/./web"],
    ] as const)
      expect(msg).toContain(
        `partitions[${i}].cgroup: must be unique: partitions[0].cgroup is the same directory ("weir/web") (rule: unique-cgroup): got "${raw}"`,
      );
    expect(msg).not.toContain("partitions[0].cgroup:");
  });

  it("rejects nested partitions, either order, and the root cgroup", () => {
    expect(checkCgroupPaths(["weir", "weir/web"])).toEqual([
      {
        field: "cgroup",
        rule: "nested-cgroup",
        message: 'must not lie inside another partition\'s cgroup: partitions[0].cgroup is "weir"',
        value: "weir/web",
        index: 1,
      },
    ]);
    expect(checkCgroupPaths(["/weir/web/", "weir"])).toEqual([
      {
        field: "cgroup",
        rule: "nested-cgroup",
        message: 'must not contain another partition\'s cgroup: partitions[0].cgroup is "weir/web"',
        value: "weir",
        index: 1,
      },
    ]);
    // siblings sharing a prefix are not nested: "weir/web" vs "weir/webapp"
    expect(checkCgroupPaths(["weir/web", "weir/webapp", "other"])).toEqual([]);
    expect(checkCgroupPaths(["/"])).toEqual([
      {
        field: "cgroup",
        rule: "cgroup-below-root",
        message: "must name a cgroup below the cgroup root, not the root itself",
        value: "/",
        index: 0,
      },
    ]);
    expect(
      errorOf(() =>
        parseConfig({
          partitions: [
            { name: "all", cgroup: "weir", pid: 1 },
            { name: "web", cgroup: "weir/web", pid: 1 },
          ],
        }),
      ),
    ).toBe(
      'config is invalid:\n  partitions[1].cgroup: must not lie inside another partition\'s cgroup: partitions[0].cgroup is "weir" (rule: nested-cgroup): got "weir/web"',
    );
  });

  it("rejects a cgroup given as its directory's absolute path under the cgroupfs, naming the path to write", () => {
    // read as "<root>/sys/fs/cgroup/cpu/weir/web", it was never found: the partition stayed gone
    expect(
      errorOf(() =>
        parseConfig({
          partitions: [
            { name: "web", cgroup: "/sys/fs/cgroup/cpu/weir/web", pid: 1 },
            { name: "api", cgroup: "/sys/fs/cgroup/system.slice/api.service/", pid: 1 },
            { name: "db", cgroup: "/sys/fs/cgroup/cpu,cpuacct/weir/db", pid: 1 },
            { name: "ok", cgroup: "/weir/ok/", pid: 1 },
          ],
        }),
      ),
    ).toBe(
      [
        "config is invalid:",
        '  partitions[0].cgroup: must be the path below the cgroup root, not the absolute path of its directory under /sys/fs/cgroup (write "weir/web") (rule: cgroup-relative): got "/sys/fs/cgroup/cpu/weir/web"',
        '  partitions[1].cgroup: must be the path below the cgroup root, not the absolute path of its directory under /sys/fs/cgroup (write "system.slice/api.service") (rule: cgroup-relative): got "/sys/fs/cgroup/system.slice/api.service/"',
        '  partitions[2].cgroup: must be the path below the cgroup root, not the absolute path of its directory under /sys/fs/cgroup (write "weir/db") (rule: cgroup-relative): got "/sys/fs/cgroup/cpu,cpuacct/weir/db"',
      ].join("\n"),
    );
    // under another roots.cgroupfs, that root is the one refused
    expect(
      checkCgroupPaths(
        ["/srv/cg/unified/weir/web", "/sys/fs/cgroup/x", "sys/fs/cgroup/y"],
        "/srv/cg",
      ),
    ).toEqual([
      {
        field: "cgroup",
        rule: "cgroup-relative",
        message:
          'must be the path below the cgroup root, not the absolute path of its directory under /srv/cg (write "weir/web")',
        value: "/srv/cg/unified/weir/web",
        index: 0,
      },
    ]);
  });

  it("rejects a reserve of all the managed CPUs or more", () => {
    // 2 CPUs = 2000m; a reserve of 2000m leaves a capacity of 0
    expect(checkReserve(2000, 2000)).toEqual({
      field: "capacity.reserve",
      rule: "reserve-lt-cpus",
      message: "must be below the managed CPUs (2000m)",
      value: 2000,
    });
    expect(checkReserve(2000, 1999)).toBeNull();
    expect(
      errorOf(() => parseConfig({ ...minimal, capacity: { cpus: 2, reserve: "2500m" } })),
    ).toBe(
      'config is invalid:\n  capacity.reserve: must be below the managed CPUs (2000m) (rule: reserve-lt-cpus): got "2500m"',
    );
    // "auto": known at run time, from the online CPUs (4 → 4000m)
    const auto = parseConfig({ ...minimal, capacity: { reserve: 4 } });
    expect(errorOf(() => checkManagedCpus(auto, 4))).toBe(
      'capacity.reserve: must be below the managed CPUs (4000m) (rule: reserve-lt-cpus): got 4000m (capacity.cpus is "auto": 4 online CPUs)',
    );
    expect(() => checkManagedCpus(auto, 5)).not.toThrow();
  });

  it("takes interface names Linux can give, in both forms (a plain string had no length limit)", () => {
    const withIfc = (interfaces: unknown[]) =>
      parseConfig({ partitions: [{ ...minimal.partitions[0]!, interfaces }] });
    const rule =
      "must be a Linux interface name: 1-15 characters, no '/', ':' or space, not '.' or '..' (rule: interface-name)";
    expect(errorOf(() => withIfc(["averyveryverylongname0"]))).toBe(
      `config is invalid:\n  partitions[0].interfaces[0]: ${rule}: got "averyveryverylongname0"`,
    );
    expect(errorOf(() => withIfc([{ name: "x/y" }]))).toBe(
      `config is invalid:\n  partitions[0].interfaces[0].name: ${rule}: got "x/y"`,
    );
    for (const bad of ["..", "a b", "eth0:1", ""])
      expect(errorOf(() => withIfc([bad]))).toContain(rule);
    withIfc(["veth-web.0_15ch", { name: "lo" }]);
  });

  it("a partition name starts with a letter or digit, and the message says so", () => {
    expect(
      errorOf(() => parseConfig({ partitions: [{ ...minimal.partitions[0]!, name: "_web" }] })),
    ).toBe(
      "config is invalid:\n  partitions[0].name: must be 1-63 letters, digits, '_', '.', '-', starting with a letter or digit (rule: partition-name): got \"_web\"",
    );
  });

  it("says what capacity.cpus takes, and blames only it when it is out of range", () => {
    // before: 'Invalid input (rule: invalid_union)' for "2", and for 0 a second line blaming
    // the reserve nobody wrote ('must be below the managed CPUs (0m) ... got missing')
    expect(errorOf(() => parseConfig({ ...minimal, capacity: { cpus: "2" } }))).toBe(
      'config is invalid:\n  capacity.cpus: must be "auto" or a number of CPUs of at least 0.001 (one millicore) (rule: capacity-cpus): got "2"',
    );
    expect(errorOf(() => parseConfig({ ...minimal, capacity: { cpus: 0 } }))).toBe(
      'config is invalid:\n  capacity.cpus: must be "auto" or a number of CPUs of at least 0.001 (one millicore) (rule: capacity-cpus): got 0',
    );
  });

  it("refuses a capacity.cpus below one millicore, and counts the CPUs in whole millicores", () => {
    // before: 0.0001 was valid, a capacity of 0.1m ("valid. capacity 0.1m" from weir validate)
    for (const cpus of [0.0001, 0.0009, 1e-9])
      expect(errorOf(() => parseConfig({ ...minimal, capacity: { cpus } }))).toBe(
        `config is invalid:\n  capacity.cpus: must be "auto" or a number of CPUs of at least 0.001 (one millicore) (rule: capacity-cpus): got ${cpus}`,
      );
    const least = parseConfig({ ...minimal, capacity: { cpus: 0.001 } });
    expect(capacityCpuMillis(least, 2)).toBe(1);
    // like min, max and reserve (cpuQuantity): 1000.5m before
    expect(capacityCpuMillis(parseConfig({ ...minimal, capacity: { cpus: 1.0005 } }), 2)).toBe(
      1001,
    );
    // so a reserve below the managed CPUs leaves at least 1m: 0.4m was a capacity before
    expect(errorOf(() => parseConfig({ ...minimal, capacity: { cpus: 1.0004, reserve: 1 } }))).toBe(
      "config is invalid:\n  capacity.reserve: must be below the managed CPUs (1000m) (rule: reserve-lt-cpus): got 1",
    );
  });

  it("counts the kernel's quota floor of capped and batch partitions in the guarantees", () => {
    const cfg = parseConfig({
      capacity: { cpus: 0.1 },
      partitions: [
        { name: "web", cgroup: "web", pid: 1, min: "90m", capped: true },
        { name: "a", cgroup: "a", pid: 1, capped: true },
        { name: "job", cgroup: "job", kind: "batch" },
      ],
    });
    // 90m + 10m (a: capped, min 0 -> floor) + 10m (job: batch, may be capped) = 110m > 100m
    expect(errorOf(() => checkCapacity(cfg, capacityCpuMillis(cfg, 2)))).toBe(
      "partitions[*].min: guarantees together, each partition weir may cap at its entitlement (capped, or batch while policy.suppressBatchAfterCycles > 0) counted at least the kernel's 10m quota floor, must fit in the capacity (100m) (rule: sum-min-with-quota-floor-le-capacity): got 110m",
    );
    // without batch suppression batch is never capped at its entitlement: 90 + 10 = 100m fits
    const noSuppress = parseConfig({
      ...cfg,
      capacity: { cpus: 0.1 },
      policy: { suppressBatchAfterCycles: 0 },
      partitions: [
        { name: "web", cgroup: "web", pid: 1, min: "90m", capped: true },
        { name: "a", cgroup: "a", pid: 1, capped: true },
        { name: "job", cgroup: "job", kind: "batch" },
      ],
    });
    expect(() => checkCapacity(noSuppress, capacityCpuMillis(noSuppress, 2))).not.toThrow();
  });

  it("reports YAML syntax errors with a line", () => {
    expect(errorOf(() => parseConfigText("partitions: [\n  - name: a\n", "x.yaml"))).toMatch(
      /x\.yaml: not valid YAML at line \d+/,
    );
  });

  it("redacts keys and tokens", () => {
    const cfg = parseConfig({
      api: { token: "0123456789abcdef0123" },
      transport: { udp: { listen: "127.0.0.1:9471" } },
      partitions: [{ name: "vm", cgroup: "vm", source: "agent", agent: { key: "ab".repeat(16) } }],
    });
    const text = JSON.stringify(redactConfig(cfg));
    expect(text).not.toContain("0123456789abcdef0123");
    expect(text).not.toContain("abab");
    expect(text).toContain("<redacted>");
  });

  it("fills every policy knob with its declared default, with or without a policy section", () => {
    const knobsOf = (raw: unknown) => policyKnobsFrom(parseConfig(raw).policy, 2000);
    expect(knobsOf(minimal)).toEqual(defaultPolicyKnobs(2000));
    expect(knobsOf({ ...minimal, policy: {} })).toEqual(defaultPolicyKnobs(2000));
    // one key set: every other one, suppressBatchAfterCycles included, at its declared default
    expect(knobsOf({ ...minimal, policy: { headroom: 0.3 } })).toEqual({
      ...defaultPolicyKnobs(2000),
      headroomFraction: 0.3,
    });
  });

  it.each([
    [{ headroom: -1 }, "policy.headroom: must be a number from 0 to 5 (rule: range): got -1"],
    [
      { smoothingUp: 0 },
      "policy.smoothingUp: must be a number above 0 and at most 1 (rule: range): got 0",
    ],
    [
      { suppressBatchAfterCycles: 2.5 },
      "policy.suppressBatchAfterCycles: must be an integer from 0 to 1000 (rule: integer-range): got 2.5",
    ],
    [
      { leftover: "spare" },
      'policy.leftover: must be one of "share", "batch-first", "idle" (rule: one-of): got "spare"',
    ],
    [{ burst: "1" }, 'policy.burst: must be a number from 0 to 1 (rule: range): got "1"'],
  ])("rejects knob %j naming field, rule and value", (policy, line) => {
    expect(errorOf(() => parseConfig({ ...minimal, policy }))).toContain(line);
  });

  it("checks a partition's weight and importance with the API's rules", () => {
    const msg = errorOf(() =>
      parseConfig({
        partitions: [{ name: "web", cgroup: "w", pid: 1, weight: 0, importance: 9 }],
      }),
    );
    expect(msg).toContain(
      "partitions[0].weight: must be an integer from 1 to 10000 (rule: weight-range): got 0",
    );
    expect(msg).toContain(
      "partitions[0].importance: must be an integer from 1 (most important) to 5 (rule: importance-range): got 9",
    );
  });

  it("generates a JSON Schema from the same definition", () => {
    const schema = configJsonSchema() as { properties: Record<string, unknown> };
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(["intervalMs", "partitions", "policy"]),
    );
    // a knob's bounds and default come from its declaration
    const policy = schema.properties.policy as { properties: Record<string, unknown> };
    expect(Object.keys(policy.properties)).toEqual(KNOB_KEYS);
    expect(policy.properties.smoothingUp).toEqual({
      default: 0.7,
      description: `${POLICY_KNOBS.smoothingUp.description} [fraction]`,
      type: "number",
      exclusiveMinimum: 0,
      maximum: 1,
    });
    expect(policy.properties.suppressBatchAfterCycles).toMatchObject({
      default: 10,
      type: "integer",
      minimum: 0,
      maximum: 1000,
    });
  });
});

const root = new URL("../../", import.meta.url);

/** README rows `| \`policy.key\` | default | meaning |`, in order. */
function readmeKnobRows(): Array<{ key: string; default: string }> {
  const readme = readFileSync(new URL("README.md", root), "utf8");
  const rows: Array<{ key: string; default: string }> = [];
  for (const line of readme.split("\n")) {
    const m = /^\|\s*`policy\.([^`]+)`\s*\|\s*([^|]+?)\s*\|/.exec(line);
    if (m) rows.push({ key: m[1]!, default: m[2]! });
  }
  return rows;
}

describe("shipped files", () => {
  it("the README's configuration table lists exactly the declared knobs, with their defaults", () => {
    const rows = readmeKnobRows();
    expect(rows.map((r) => r.key)).toEqual(KNOB_KEYS);
    for (const row of rows) {
      // numbers as written (0.2), choices in backticks (`batch-first`)
      const shown = /^`(.*)`$/.exec(row.default)?.[1] ?? Number(row.default);
      expect(shown, row.key).toBe(POLICY_KNOBS[row.key as KnobKey].default);
    }
  });

  it("examples/weir.yaml is valid and weir.schema.json is current", () => {
    const cfg = loadConfigFile(new URL("examples/weir.yaml", root).pathname);
    expect(cfg.partitions.map((p) => p.name)).toEqual(["web", "api", "svc", "batch"]);
    const onDisk = JSON.parse(readFileSync(new URL("weir.schema.json", root), "utf8"));
    // regenerate with: node bin/weir.js schema > weir.schema.json
    expect(onDisk).toEqual(configJsonSchema());
  });

  it("examples/discover.yaml (README's discover: example) is valid", () => {
    const cfg = loadConfigFile(new URL("examples/discover.yaml", root).pathname);
    expect(cfg.partitions).toEqual([]);
    expect(cfg.discover?.partitions.map((t) => [t.cgroup, t.name, t.partition.kind])).toEqual([
      ["system.slice/docker-*.scope", "c-{1:12}", "network"],
      ["batch.slice/*.service", "{1}", "batch"],
    ]);
    const readme = readFileSync(new URL("README.md", root), "utf8");
    const body = readFileSync(new URL("examples/discover.yaml", root), "utf8")
      .split("\n")
      .filter((l) => !l.startsWith("#"))
      .join("\n");
    expect(readme).toContain(body.trim());
  });
});

describe("config: partitions[].packets chooses the counter sources", () => {
  const part = (extra: Record<string, unknown>) => ({
    partitions: [{ name: "web", cgroup: "weir/web", ...extra }],
  });

  it("keeps today's configs: no packets field, interfaces and/or pid, source as written", () => {
    const cfg = parseConfig(part({ interfaces: ["vweb0"], pid: 7 }));
    expect(cfg.partitions[0]!.packets).toBeUndefined();
    expect(cfg.partitions[0]!.source).toBe("host");
  });

  it("takes a name, a list, or names with options", () => {
    expect(parseConfig(part({ pid: 7, packets: "pid" })).partitions[0]!.packets).toBe("pid");
    expect(
      parseConfig(part({ interfaces: ["v0"], pid: 7, packets: ["interfaces", "pid"] }))
        .partitions[0]!.packets,
    ).toEqual(["interfaces", "pid"]);
    expect(parseConfig(part({ pid: 7, packets: { pid: null } })).partitions[0]!.packets).toEqual({
      pid: null,
    });
  });

  it("names the field, the rule and the value for an unknown source", () => {
    expect(errorOf(() => parseConfig(part({ packets: "ebpf" })))).toContain(
      "partitions[0].packets: must be one of interfaces, pid, agent",
    );
    expect(errorOf(() => parseConfig(part({ packets: "ebpf" })))).toContain(
      '(rule: counter-source): got "ebpf"',
    );
    expect(errorOf(() => parseConfig(part({ pid: 7, packets: ["pid", "nope"] })))).toContain(
      "partitions[0].packets[1]: must be one of",
    );
  });

  it("names the forms packets: takes when it has none of them", () => {
    // before: 'Invalid input (rule: invalid_union)', and zod's 'Too small' for []
    for (const packets of [5, { bpf: [1] }, { bpf: "pin" }])
      expect(errorOf(() => parseConfig(part({ pid: 7, packets })))).toContain(
        "partitions[0].packets: must be a counter source's name, a list of names, or {name: options}",
      );
    expect(errorOf(() => parseConfig(part({ pid: 7, packets: [] })))).toContain(
      "partitions[0].packets: must name at least one counter source (rule: packets-form): got []",
    );
  });

  it("asks a source's needs from the partition's other fields", () => {
    expect(errorOf(() => parseConfig(part({ packets: "pid" })))).toContain(
      "partitions[0].pid: is required by the pid counter source (rule: pid-source)",
    );
    expect(errorOf(() => parseConfig(part({ pid: 7, packets: "interfaces" })))).toContain(
      "partitions[0].interfaces: must name at least one interface (rule: interfaces-source)",
    );
    expect(errorOf(() => parseConfig(part({ pid: 7, packets: { pid: { x: 1 } } })))).toContain(
      "partitions[0].packets.pid: the pid counter source takes no options (rule: no-options)",
    );
  });

  it("passes a source's options to it and reports its refusals under packets.<name>", () => {
    expect(parseConfig(part({ packets: { bpf: { pin: true } } })).partitions[0]!.packets).toEqual({
      bpf: { pin: true },
    });
    // the value once: the source's message names it, the formatter does not add it again
    expect(
      errorOf(() => parseConfig(part({ packets: { bpf: { offered: "rx", pin: 3 } } }))).split(
        "\n  ",
      ),
    ).toEqual([
      "config is invalid:",
      'partitions[0].packets.bpf.offered: must be ingress or egress (rule: bpf-hook): got "rx"',
      "partitions[0].packets.bpf.pin: must be true or false (rule: boolean): got 3",
    ]);
  });

  it("derives where throughput comes from: agent-fed sources need the agent's key and a transport", () => {
    const key = "00".repeat(16);
    const transport = { udp: { listen: "127.0.0.1:0" } };
    const agentOnly = parseConfig({ ...part({ packets: "agent", agent: { key } }), transport });
    expect(agentOnly.partitions[0]!.source).toBe("agent");
    const both = parseConfig({
      ...part({ interfaces: ["v0"], packets: ["interfaces", "agent"], agent: { key } }),
      transport,
    });
    expect(both.partitions[0]!.source).toBe("both");
    expect(errorOf(() => parseConfig(part({ packets: "agent" })))).toContain(
      'partitions[0].agent: is required when source is "agent" (rule: agent-key)',
    );
  });

  it("transport.udp.directiveRefreshMs: 1,000 ms by default, 0 (every cycle) allowed, never negative", () => {
    const agent = { packets: "agent", agent: { key: "00".repeat(16) } };
    const udp = (extra: object) =>
      parseConfig({ ...part(agent), transport: { udp: { listen: "127.0.0.1:0", ...extra } } });
    expect(udp({}).transport?.udp?.directiveRefreshMs).toBe(DIRECTIVE_REFRESH_MS);
    expect(DIRECTIVE_REFRESH_MS).toBe(1000); // what the README and weir.schema.json say
    expect(udp({ directiveRefreshMs: 0 }).transport?.udp?.directiveRefreshMs).toBe(0);
    expect(errorOf(() => udp({ directiveRefreshMs: -5 }))).toContain(
      "transport.udp.directiveRefreshMs: Too small: expected number to be >=0 (rule: too_small): got -5",
    );
  });
});

describe("config: what `weir run` would otherwise refuse only when it opens its sockets", () => {
  // Before: each of these passed `weir validate`, and `weir run` stopped with a RangeError and
  // its stack trace (exit 1) as it opened the agents' transports or the API; a UDP port above
  // 65535 was bound modulo 65536 without a word (99999 -> 34463).
  const key = "00".repeat(16);
  const agentPart = (name: string, agent: object) => ({
    name,
    cgroup: `weir/${name}`,
    source: "agent",
    agent: { key, ...agent },
  });
  const udp = { udp: { listen: "127.0.0.1:0" } };

  it("gives each agent partition its own wire index, given or its place in the list", () => {
    expect(
      errorOf(() =>
        parseConfig({
          transport: udp,
          partitions: [agentPart("a", { index: 1 }), agentPart("b", { index: 1 })],
        }),
      ),
    ).toContain(
      "partitions[1].agent.index: must be unique: partitions[0] (a) has agent index 1 too (rule: unique-agent-index): got 1",
    );
    // b's index is its place in the list, 1: a took it explicitly
    expect(
      errorOf(() =>
        parseConfig({
          transport: udp,
          partitions: [agentPart("a", { index: 1 }), agentPart("b", {})],
        }),
      ),
    ).toContain(
      "partitions[1].agent.index: must be unique: partitions[0] (a) has agent index 1 too (its place in the list: agent.index not given) (rule: unique-agent-index): got missing",
    );
    // distinct indexes, given or implied, are fine
    parseConfig({ transport: udp, partitions: [agentPart("a", { index: 5 }), agentPart("b", {})] });
  });

  it("keeps agent indexes below transport.shm.slots", () => {
    const shm = { shm: { path: "/run/weir/slots", slots: 4 } };
    expect(
      errorOf(() => parseConfig({ transport: shm, partitions: [agentPart("a", { index: 9 })] })),
    ).toContain(
      "partitions[0].agent.index: must be below transport.shm.slots (4): agent index is 9 (rule: index-lt-slots): got 9",
    );
    parseConfig({ transport: shm, partitions: [agentPart("a", { index: 3 })] });
    // over UDP alone there are no slots
    parseConfig({ transport: udp, partitions: [agentPart("a", { index: 9 })] });
  });

  it("takes a key of whole bytes only (the codec refuses an odd hex digit)", () => {
    const withKey = (k: string) =>
      parseConfig({ transport: udp, partitions: [{ ...agentPart("a", {}), agent: { key: k } }] });
    expect(errorOf(() => withKey(`${key}0`))).toContain(
      `partitions[0].agent.key: must be an even number (32-128) of hex digits: 16-64 bytes (rule: hmac-key): got "${key}0"`,
    );
    withKey(key);
    withKey("ab".repeat(64));
    expect(errorOf(() => withKey("ab".repeat(65)))).toContain("(rule: hmac-key)");
  });

  it("takes listen ports from 0 to 65535", () => {
    const part = { name: "a", cgroup: "weir/a", interfaces: ["v0"] };
    expect(
      errorOf(() => parseConfig({ api: { listen: "127.0.0.1:99999" }, partitions: [part] })),
    ).toContain(
      'api.listen: must have a port from 0 to 65535 (rule: port-range): got "127.0.0.1:99999"',
    );
    expect(
      errorOf(() =>
        parseConfig({
          transport: { udp: { listen: "0.0.0.0:65536" } },
          partitions: [agentPart("a", {})],
        }),
      ),
    ).toContain(
      'transport.udp.listen: must have a port from 0 to 65535 (rule: port-range): got "0.0.0.0:65536"',
    );
    parseConfig({ api: { listen: "127.0.0.1:65535" }, partitions: [part] });
  });
});

describe("config: partitions[].actuator qemu and its qemu: target", () => {
  const qemuPart = (extra: Record<string, unknown>) => ({
    partitions: [{ name: "vm1", cgroup: "weirvm/p1", pid: 1, ...extra }],
  });

  it("a qemu partition gets a qemu target (QMP socket, console, vCPU bounds) on its cgroup", () => {
    const cfg = parseConfig(
      qemuPart({
        actuator: "qemu",
        qemu: { qmp: "/run/weir/p1.qmp", console: "/run/weir/p1.log", maxCpus: 2 },
      }),
    );
    expect(actuatorTarget(cfg.partitions[0]!)).toEqual({
      partition: "vm1",
      qemu: {
        cgroup: "weirvm/p1",
        qmpSocket: "/run/weir/p1.qmp",
        consoleLog: "/run/weir/p1.log",
        maxCpus: 2,
      },
    });
    expect(actuatorTarget(parseConfig(minimal).partitions[0]!)).toEqual({
      partition: "web",
      cgroup: "weir/web",
    });
  });

  it("names field, rule and value when the qemu target is missing, misplaced or inverted", () => {
    expect(errorOf(() => parseConfig(qemuPart({ actuator: "qemu" })))).toContain(
      "partitions[0].qemu: is required with actuator: qemu: {qmp, console} (rule: qemu-target)",
    );
    expect(errorOf(() => parseConfig(qemuPart({ qemu: { qmp: "/q", console: "/c" } })))).toContain(
      'partitions[0].qemu: is only for actuator: qemu; current actuator is "cgroup" (rule: qemu-target)',
    );
    expect(
      errorOf(() =>
        parseConfig(
          qemuPart({
            actuator: "qemu",
            qemu: { qmp: "/q", console: "/c", minCpus: 3, maxCpus: 2 },
          }),
        ),
      ),
    ).toContain(
      "partitions[0].qemu.minCpus: must be at most maxCpus (2): current value is 3 (rule: qemu-cpus)",
    );
  });
});

describe("config placement:", () => {
  it("is auto at fill 0.8 when absent or given without a mode", () => {
    expect(parseConfig(minimal).placement).toEqual({ mode: "auto", fill: 0.8 });
    expect(parseConfig({ ...minimal, placement: {} }).placement).toEqual({
      mode: "auto",
      fill: 0.8,
    });
    expect(parseConfig({ ...minimal, placement: { mode: "spread" } }).placement).toEqual({
      mode: "spread",
      fill: 0.8,
    });
    expect(parseConfig({ ...minimal, placement: { mode: "off", fill: 0.5 } }).placement).toEqual({
      mode: "off",
      fill: 0.5,
    });
  });

  it("names the field, the rule and the value of a bad one", () => {
    const bad = (placement: unknown) => errorOf(() => parseConfig({ ...minimal, placement }));
    expect(bad({ fill: 0 })).toMatch(/placement\.fill: must be above 0 \(rule: fill-range.*got 0/);
    expect(bad({ fill: 1 })).toMatch(
      /placement\.fill: must be at most 0\.95 \(rule: fill-range.*got 1/,
    );
    expect(bad({ mode: "pack" })).toMatch(/placement\.mode: .*"off"\|"spread"\|"auto".*got "pack"/);
    expect(bad({ fills: 0.8 })).toMatch(
      /placement: unknown field\(s\) "fills" \(rule: known-fields\)/,
    );
  });
});
