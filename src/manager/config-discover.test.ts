import { describe, expect, it } from "vitest";
import { isWeirError } from "../core/errors.ts";
import { configJsonSchema, parseConfig } from "./config.ts";

/** The lines of parseConfig's error: `field: message (rule: X): got value`, one per problem. */
function errorLines(raw: unknown): string[] {
  try {
    parseConfig(raw);
  } catch (e) {
    if (!isWeirError(e)) throw e;
    const [head, ...lines] = e.message.split("\n  ");
    expect(head).toBe("config is invalid:");
    return lines;
  }
  throw new Error("expected an error");
}

/** A config whose one template is `template`. */
const withTemplate = (template: Record<string, unknown>) => ({
  discover: { partitions: [template] },
});

describe("config: discover:", () => {
  it("fills a template's defaults: interval, limit, name from the stars, the partition's fields", () => {
    const cfg = parseConfig({
      discover: {
        partitions: [
          { cgroup: "k/*/pod-*", kind: "batch" },
          { cgroup: "/system.slice/docker-*.scope", packets: "bpf", min: "250m", max: 1 },
        ],
      },
    });
    expect(cfg.partitions).toEqual([]);
    expect(cfg.discover!.intervalMs).toBe(1000);
    expect(cfg.discover!.maxPartitions).toBe(1000);
    expect(cfg.discover!.partitions).toEqual([
      {
        cgroup: "k/*/pod-*",
        name: "{1}-{2}",
        partition: {
          kind: "batch",
          actuator: "cgroup",
          interfaces: [],
          min: 0,
          weight: 100,
          capped: false,
          importance: 3,
          source: "host",
        },
      },
      {
        // the pattern is kept as written (discover.ts normalises it when it scans)
        cgroup: "/system.slice/docker-*.scope",
        name: "{1}",
        partition: {
          kind: "network",
          actuator: "cgroup",
          interfaces: [],
          packets: "bpf",
          min: 250,
          max: 1000,
          weight: 100,
          capped: false,
          importance: 3,
          source: "host",
        },
      },
    ]);
  });

  it("keeps what a template gives: interval, limit, name, partition fields", () => {
    const cfg = parseConfig({
      partitions: [{ name: "web", cgroup: "weir/web", interfaces: ["vweb0"] }],
      discover: {
        intervalMs: 250,
        maxPartitions: 7,
        partitions: [
          { cgroup: "k/*/pod-*", name: "p-{2:8}", kind: "batch", weight: 300, importance: 5 },
        ],
      },
    });
    expect(cfg.partitions.map((p) => p.name)).toEqual(["web"]);
    expect(cfg.discover).toMatchObject({
      intervalMs: 250,
      maxPartitions: 7,
      partitions: [{ cgroup: "k/*/pod-*", name: "p-{2:8}" }],
    });
    expect(cfg.discover!.partitions[0]!.partition).toMatchObject({
      kind: "batch",
      weight: 300,
      importance: 5,
    });
    expect(cfg.discover!.partitions[0]!.partition).not.toHaveProperty("name");
    expect(cfg.discover!.partitions[0]!.partition).not.toHaveProperty("cgroup");
  });

  it("lets partitions be empty or left out when discover: is given", () => {
    const template = { cgroup: "weir/*", kind: "batch" };
    expect(parseConfig({ partitions: [], ...withTemplate(template) }).partitions).toEqual([]);
    expect(parseConfig(withTemplate(template)).partitions).toEqual([]);
  });

  it("needs a partition or a template (rule: min-1)", () => {
    expect(errorLines({})).toEqual([
      "partitions: must list at least one partition, or discover: must find them (rule: min-1): got missing",
    ]);
    expect(errorLines({ partitions: [] })).toEqual([
      "partitions: must list at least one partition, or discover: must find them (rule: min-1): got []",
    ]);
    expect(errorLines({ discover: { partitions: [] } })).toEqual([
      "discover.partitions: must give at least one template (rule: min-1): got []",
    ]);
  });

  it("needs a * in the pattern (rule: discover-pattern)", () => {
    for (const cgroup of ["weir/t", "/"])
      expect(errorLines(withTemplate({ cgroup, kind: "batch" }))).toEqual([
        `discover.partitions[0].cgroup: must hold a * in a segment, e.g. system.slice/docker-*.scope: a cgroup without one is one partition, for partitions: (rule: discover-pattern): got ${JSON.stringify(cgroup)}`,
      ]);
  });

  it("refuses '..' in the pattern (rule: cgroup-path)", () => {
    expect(errorLines(withTemplate({ cgroup: "weir/../*", kind: "batch" }))).toEqual([
      `discover.partitions[0].cgroup: must not contain '..' (rule: cgroup-path): got "weir/../*"`,
    ]);
  });

  it("refuses a pattern given as its absolute path under the cgroupfs (rule: cgroup-relative)", () => {
    expect(
      errorLines(withTemplate({ cgroup: "/sys/fs/cgroup/cpu/weir/*", kind: "batch" })),
    ).toEqual([
      `discover.partitions[0].cgroup: must be the path below the cgroup root, not the absolute path of its directory under /sys/fs/cgroup (write "weir/*") (rule: cgroup-relative): got "/sys/fs/cgroup/cpu/weir/*"`,
    ]);
    // under the roots.cgroupfs given, for the template it is at
    expect(
      errorLines({
        roots: { cgroupfs: "/mnt/cg" },
        discover: {
          partitions: [
            { cgroup: "weir/*", kind: "batch" },
            { cgroup: "/mnt/cg/k/*/pod-*", kind: "batch" },
          ],
        },
      }),
    ).toEqual([
      `discover.partitions[1].cgroup: must be the path below the cgroup root, not the absolute path of its directory under /mnt/cg (write "k/*/pod-*") (rule: cgroup-relative): got "/mnt/cg/k/*/pod-*"`,
    ]);
    // /sys/fs/cgroup is just a path when the cgroupfs is elsewhere
    expect(
      parseConfig({
        roots: { cgroupfs: "/mnt/cg" },
        ...withTemplate({ cgroup: "/sys/fs/cgroup/*", kind: "batch" }),
      }).discover!.partitions[0]!.cgroup,
    ).toBe("/sys/fs/cgroup/*");
  });

  it("checks the name template's placeholders and characters (rule: discover-name)", () => {
    expect(errorLines(withTemplate({ cgroup: "weir/*", name: "x-{2}", kind: "batch" }))).toEqual([
      'discover.partitions[0].name: uses {2} but the cgroup pattern has 1 * (rule: discover-name: {1} … {1}): got "x-{2}"',
    ]);
    expect(errorLines(withTemplate({ cgroup: "weir/*", name: "x{1:0}", kind: "batch" }))).toEqual([
      'discover.partitions[0].name: cuts {1:0} to no character (rule: discover-name): got "x{1:0}"',
    ]);
    for (const name of ["x@{1}", "_{1}", "{1"])
      expect(errorLines(withTemplate({ cgroup: "weir/*", name, kind: "batch" }))).toEqual([
        `discover.partitions[0].name: must be letters, digits, '_', '.', '-' and {N} placeholders, starting with a letter, a digit or a placeholder (rule: discover-name): got ${JSON.stringify(name)}`,
      ]);
    // every placeholder up to the stars' count, cut or whole, with literal text around
    expect(
      parseConfig(withTemplate({ cgroup: "k/*/pod-*", name: "k8s.{1:4}_{2}", kind: "batch" }))
        .discover!.partitions[0]!.name,
    ).toBe("k8s.{1:4}_{2}");
  });

  it("refuses the fields of one partition only (rule: discover-per-partition)", () => {
    const lines = errorLines(
      withTemplate({
        cgroup: "weir/*",
        packets: "bpf",
        interfaces: ["eth0"],
        pid: 5,
        agent: { key: "00".repeat(16) },
        actuator: "qemu",
        qemu: { qmp: "/run/q.sock", console: "/run/q.log" },
        source: "agent",
      }),
    );
    const rule =
      "a template cannot give it to every cgroup it finds (rule: discover-per-partition)";
    for (const line of [
      `discover.partitions[0].interfaces: is a partition's own host interfaces: ${rule}: got ["eth0"]`,
      `discover.partitions[0].pid: is a process of the partition's own: ${rule}: got 5`,
      `discover.partitions[0].agent: is the partition's own agent key and index: ${rule}: got {"key":"00000000000000000000000000000000"}`,
      `discover.partitions[0].qemu: is one QEMU guest: ${rule}: got {"qmp":"/run/q.sock","console":"/run/q.log"}`,
      `discover.partitions[0].source: is where its throughput comes from, which follows from packets:: ${rule}: got "agent"`,
    ])
      expect(lines).toContain(line);
    expect(lines.filter((l) => l.includes("(rule: discover-per-partition)"))).toHaveLength(5);
    // one at a time: each is refused alone
    for (const [field, value] of [
      ["interfaces", ["veth0"]],
      ["pid", 1],
      ["source", "host"],
    ] as const)
      expect(errorLines(withTemplate({ cgroup: "weir/*", kind: "batch", [field]: value }))).toEqual(
        [
          expect.stringMatching(
            new RegExp(
              `^discover\\.partitions\\[0\\]\\.${field}: is .*\\(rule: discover-per-partition\\): got `,
            ),
          ),
        ],
      );
  });

  it("needs a discovered network partition counted by its cgroup (rule: discover-traffic-source)", () => {
    expect(errorLines(withTemplate({ cgroup: "weir/*" }))).toEqual([
      "discover.partitions[0].packets: a discovered network partition is counted by its cgroup: give packets: bpf (rule: discover-traffic-source): got missing",
    ]);
    expect(errorLines(withTemplate({ cgroup: "weir/*", packets: "agent" }))).toEqual([
      expect.stringMatching(
        /^discover\.partitions\[0\]\.packets: (?=.*\bagent\b)(?=.*counted by its cgroup).*\(rule: discover-traffic-source\): got "agent"$/,
      ),
    ]);
    // with bpf it is (and a batch template needs no counter at all)
    expect(
      parseConfig(withTemplate({ cgroup: "weir/*", packets: "bpf" })).discover!.partitions[0]!
        .partition,
    ).toMatchObject({ kind: "network", packets: "bpf", source: "host" });
  });

  it("reports a partition field's own rule at the template's path", () => {
    expect(errorLines(withTemplate({ cgroup: "weir/*", kind: "batch", weight: 0 }))).toEqual([
      "discover.partitions[0].weight: must be an integer from 1 to 10000 (rule: weight-range): got 0",
    ]);
    expect(
      errorLines({
        discover: {
          partitions: [
            { cgroup: "weir/*", kind: "batch" },
            { cgroup: "k/*", kind: "batch", min: "lots" },
          ],
        },
      }),
    ).toEqual([
      'discover.partitions[1].min: must be a non-negative CPU amount like 0.5 or "500m" (rule: cpu-quantity): got "lots"',
    ]);
  });

  it("checks a template's min against its max, as a partition's (rule: min-le-max)", () => {
    expect(errorLines(withTemplate({ cgroup: "weir/*", kind: "batch", min: 1, max: 0.5 }))).toEqual(
      ["discover.partitions[0].max: must be >= min (1000m) (rule: min-le-max): got 0.5"],
    );
  });

  it("refuses actuator: qemu, one guest's backend (rule: discover-per-partition)", () => {
    expect(errorLines(withTemplate({ cgroup: "weir/*", kind: "batch", actuator: "qemu" }))).toEqual(
      [
        `discover.partitions[0].actuator: is one QEMU guest's backend: a template cannot give it to every cgroup it finds (rule: discover-per-partition): got "qemu"`,
      ],
    );
  });

  it("refuses unknown fields in a template and in discover: (rule: known-fields)", () => {
    expect(errorLines(withTemplate({ cgroup: "weir/*", kind: "batch", wieght: 5 }))).toEqual([
      'discover.partitions[0]: unknown field(s) "wieght" (rule: known-fields)',
    ]);
    expect(
      errorLines({ discover: { partitions: [{ cgroup: "weir/*", kind: "batch" }], every: 5 } }),
    ).toEqual(['discover: unknown field(s) "every" (rule: known-fields)']);
  });

  it("keeps intervalMs and maxPartitions in range", () => {
    const lines = errorLines({
      discover: {
        intervalMs: 50,
        maxPartitions: 0,
        partitions: [{ cgroup: "w/*", kind: "batch" }],
      },
    });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^discover\.intervalMs: .*>=\s*100.*got 50$/);
    expect(lines[1]).toMatch(/^discover\.maxPartitions: .*>=\s*1.*got 0$/);
  });

  it("is in the JSON Schema", () => {
    const schema = configJsonSchema() as {
      properties: Record<string, { properties?: Record<string, Record<string, unknown>> }>;
    };
    const discover = schema.properties.discover!;
    expect(discover.properties!.intervalMs).toMatchObject({ default: 1000, minimum: 100 });
    expect(discover.properties!.maxPartitions).toMatchObject({ default: 1000, minimum: 1 });
    expect(discover.properties!.partitions).toMatchObject({
      type: "array",
      minItems: 1,
      items: { type: "object", required: ["cgroup"] },
    });
  });
});
