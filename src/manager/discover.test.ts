import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type ConfigInput, parseConfig } from "./config.ts";
import {
  defaultNameTemplate,
  discoveredName,
  discoverNow,
  discoveryRoot,
  type FoundCgroup,
  foundKey,
  scanTemplates,
  withDiscovered,
} from "./discover.ts";
import { tempTree } from "./test-cgroup-tree.ts";

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A temporary tree (removed after the test) with `dirs` made and `files` written under it. */
function tree(dirs: readonly string[], files: Record<string, string> = {}) {
  const t = tempTree("weir-discover-");
  made.push(t.root);
  for (const d of dirs) fs.mkdirSync(path.join(t.root, d), { recursive: true });
  for (const [rel, text] of Object.entries(files)) t.write(rel, text);
  return t;
}

const found = (template: number, cgroup: string, ...captures: string[]): FoundCgroup => ({
  template,
  cgroup,
  captures,
});

/** 2 CPUs (2000m), placement off, the templates and partitions given. */
const configWith = (extra: Partial<ConfigInput>) =>
  parseConfig({ capacity: { cpus: 2 }, placement: { mode: "off" }, ...extra });

describe("scanTemplates", () => {
  it("matches a * segment: directories only, at the pattern's depth, captured whole", () => {
    const { root } = tree(["weir/t/b", "weir/t/a/nested", "weir/t/c10", "weir/t/c9", "weir/u/x"], {
      "weir/t/cgroup.procs": "",
      "weir/t/file-not-dir": "x",
    });
    const want = [
      found(0, "weir/t/a", "a"),
      found(0, "weir/t/b", "b"),
      // by path, code unit order: "c10" < "c9"
      found(0, "weir/t/c10", "c10"),
      found(0, "weir/t/c9", "c9"),
    ];
    expect(scanTemplates(root, [{ cgroup: "weir/t/*" }])).toEqual(want);
    // the pattern is normalised as a partition's cgroup is
    expect(scanTemplates(root, [{ cgroup: "/weir//t/./*/" }])).toEqual(want);
  });

  it("matches a * inside a segment: the capture is what the * stood for, one character at least", () => {
    const { root } = tree(
      [
        "system.slice/docker-abc123.scope",
        "system.slice/docker-f00d.scope",
        "system.slice/docker-.scope", // the * needs one character
        "system.slice/docker-abcXscope", // '.' is a literal dot, not any character
        "system.slice/docker-abc.scopes", // anchored at the end
        "system.slice/xdocker-abc.scope", // anchored at the start
        "system.slice/sshd.service",
      ],
      { "system.slice/docker-file.scope": "" }, // a file, not a cgroup
    );
    expect(scanTemplates(root, [{ cgroup: "system.slice/docker-*.scope" }])).toEqual([
      found(0, "system.slice/docker-abc123.scope", "abc123"),
      found(0, "system.slice/docker-f00d.scope", "f00d"),
    ]);
  });

  it("matches two * segments, one capture each, sorted by the whole path", () => {
    const { root } = tree(["k/ns2/pod-9", "k/ns1/pod-2", "k/ns1/pod-1", "k/ns2/other", "k/ns3"], {
      "k/file": "",
    });
    expect(scanTemplates(root, [{ cgroup: "k/*/pod-*" }])).toEqual([
      found(0, "k/ns1/pod-1", "ns1", "1"),
      found(0, "k/ns1/pod-2", "ns1", "2"),
      found(0, "k/ns2/pod-9", "ns2", "9"),
    ]);
  });

  it("finds nothing below a literal segment that is not a directory, or a root that is not there", () => {
    const { root } = tree(["weir/t/a"], { "weir/file": "" });
    expect(scanTemplates(root, [{ cgroup: "nope/*" }])).toEqual([]);
    expect(scanTemplates(root, [{ cgroup: "weir/nope/*" }])).toEqual([]);
    expect(scanTemplates(root, [{ cgroup: "weir/file/*" }])).toEqual([]);
    expect(scanTemplates(root, [{ cgroup: "weir/t/*/deeper" }])).toEqual([]);
    expect(scanTemplates(path.join(root, "gone"), [{ cgroup: "weir/*" }])).toEqual([]);
  });

  it("lists by template, then by path; a cgroup two templates match is found by each", () => {
    const { root } = tree(["weir/t/b", "weir/t/a", "k/n/pod-1", "weir/s/a"]);
    expect(
      scanTemplates(root, [
        { cgroup: "weir/t/*" },
        { cgroup: "k/*/pod-*" },
        { cgroup: "weir/*/a" },
      ]),
    ).toEqual([
      found(0, "weir/t/a", "a"),
      found(0, "weir/t/b", "b"),
      found(1, "k/n/pod-1", "n", "1"),
      found(2, "weir/s/a", "s"),
      found(2, "weir/t/a", "t"),
    ]);
  });
});

describe("discoveredName", () => {
  it("puts each capture, or its first L characters, in its placeholder", () => {
    expect(discoveredName("{1}", ["abc123"])).toBe("abc123");
    expect(discoveredName("{1:12}", ["0123456789abcdef0123"])).toBe("0123456789ab");
    expect(discoveredName("{1:12}", ["short"])).toBe("short");
    expect(discoveredName("c-{1}", ["abc"])).toBe("c-abc");
    expect(discoveredName("{2}.{1:3}", ["namespace", "pod"])).toBe("pod.nam");
  });

  it("makes every character a name may not hold _", () => {
    expect(discoveredName("{1}", ["getty@tty1"])).toBe("getty_tty1");
    expect(discoveredName("c-{1}", ["a b:c/d\\e"])).toBe("c-a_b_c_d_e");
    // the allowed ones stay
    expect(discoveredName("{1}", ["A-z_0.9"])).toBe("A-z_0.9");
  });

  it("cuts a name over 63 characters to 54, '-' and 8 hex digits of its hash: stable and distinct", () => {
    expect(discoveredName("{1}", ["a".repeat(63)])).toBe("a".repeat(63));
    const long = "a".repeat(70);
    const name = discoveredName("{1}", [long]);
    const hash = createHash("sha256").update(long).digest("hex").slice(0, 8);
    expect(name).toBe(`${"a".repeat(54)}-${hash}`);
    expect(name).toHaveLength(63);
    expect(name).toMatch(/^a{54}-[0-9a-f]{8}$/);
    expect(discoveredName("{1}", [long])).toBe(name);
    const other = discoveredName("{1}", ["a".repeat(71)]);
    expect(other).toMatch(/^a{54}-[0-9a-f]{8}$/);
    expect(other).not.toBe(name);
    // the hash is of the name before its characters were replaced: neighbours stay apart
    const at = discoveredName("{1}", [`${"b".repeat(70)}@x`]);
    const hashSign = discoveredName("{1}", [`${"b".repeat(70)}#x`]);
    expect(at).toMatch(/^b{54}-[0-9a-f]{8}$/);
    expect(at).not.toBe(hashSign);
  });

  it("is null when the name does not start with a letter or a digit", () => {
    expect(discoveredName("{1}", ["_tmp"])).toBeNull();
    expect(discoveredName("{1}", ["-x"])).toBeNull();
    expect(discoveredName("{1}", [".hidden"])).toBeNull();
    expect(discoveredName("{1}", ["@x"])).toBeNull(); // "_x" once replaced
    expect(discoveredName("{1}", [""])).toBeNull();
  });

  it("defaults to every capture joined by '-'", () => {
    expect(defaultNameTemplate("k/*/pod-*")).toBe("{1}-{2}");
    expect(defaultNameTemplate("system.slice/docker-*.scope")).toBe("{1}");
    expect(discoveredName(defaultNameTemplate("k/*/pod-*"), ["ns1", "7"])).toBe("ns1-7");
  });
});

describe("withDiscovered", () => {
  it("appends a partition per cgroup found, with the template's fields, after the configured ones", () => {
    const cfg = configWith({
      partitions: [{ name: "hog", cgroup: "weir/hog", kind: "batch" }],
      discover: {
        partitions: [
          { cgroup: "system.slice/docker-*.scope", name: "c-{1:6}", kind: "batch", weight: 250 },
          { cgroup: "k/*/pod-*", packets: "bpf", importance: 2, capped: true, max: "500m" },
        ],
      },
    });
    const d = withDiscovered(
      cfg,
      [
        found(0, "system.slice/docker-abcdef123.scope", "abcdef123"),
        found(1, "k/ns1/pod-1", "ns1", "1"),
      ],
      2000,
    );
    expect(d.refused).toEqual([]);
    expect(d.discovered).toEqual([
      { name: "c-abcdef", cgroup: "system.slice/docker-abcdef123.scope", template: 0 },
      { name: "ns1-1", cgroup: "k/ns1/pod-1", template: 1 },
    ]);
    expect(d.config.partitions.map((p) => p.name)).toEqual(["hog", "c-abcdef", "ns1-1"]);
    expect(d.config.partitions[0]).toBe(cfg.partitions[0]);
    expect(d.config.partitions[1]).toEqual({
      ...cfg.discover!.partitions[0]!.partition,
      name: "c-abcdef",
      cgroup: "system.slice/docker-abcdef123.scope",
    });
    expect(d.config.partitions[1]).toMatchObject({ kind: "batch", weight: 250, min: 0 });
    expect(d.config.partitions[2]).toMatchObject({
      name: "ns1-1",
      cgroup: "k/ns1/pod-1",
      kind: "network",
      packets: "bpf",
      source: "host",
      importance: 2,
      capped: true,
      max: 500,
      interfaces: [],
    });
    // the rest of the config is the same
    expect({ ...d.config, partitions: cfg.partitions }).toEqual(cfg);
  });

  it("skips a cgroup a configured partition names, and refuses one nested with a partition's", () => {
    const cfg = configWith({
      partitions: [{ name: "web", cgroup: "/weir/web/", kind: "batch" }],
      discover: {
        partitions: [
          { cgroup: "weir/*", kind: "batch" },
          { cgroup: "weir/*/*", name: "{1}-{2}", kind: "batch" },
          { cgroup: "*", name: "top-{1}", kind: "batch" },
          { cgroup: "w*/a", name: "w-{1}", kind: "batch" },
        ],
      },
    });
    const d = withDiscovered(
      cfg,
      [
        found(0, "weir/a", "a"),
        found(0, "weir/web", "web"), // the configured partition: skipped without a word
        found(1, "weir/a/x", "a", "x"),
        found(1, "weir/web/y", "web", "y"),
        found(2, "other", "other"),
        found(2, "weir", "weir"),
        found(3, "weir/a", "eir"),
      ],
      2000,
    );
    expect(d.discovered).toEqual([
      { name: "a", cgroup: "weir/a", template: 0 },
      { name: "top-other", cgroup: "other", template: 2 },
    ]);
    expect(d.refused).toEqual([
      { cgroup: "weir/a/x", template: 1, reason: "it lies inside partition a's cgroup weir/a" },
      {
        cgroup: "weir/web/y",
        template: 1,
        reason: "it lies inside partition web's cgroup weir/web",
      },
      { cgroup: "weir", template: 2, reason: "it holds partition web's cgroup" },
      { cgroup: "weir/a", template: 3, reason: "it is partition a's cgroup already" },
    ]);
    expect(d.refused.map((r) => r.cgroup)).not.toContain("weir/web");
    expect(d.config.partitions.map((p) => [p.name, p.cgroup])).toEqual([
      ["web", "/weir/web/"],
      ["a", "weir/a"],
      ["top-other", "other"],
    ]);
  });

  it("refuses a cgroup that holds a partition discovered before it", () => {
    const cfg = configWith({
      discover: {
        partitions: [
          { cgroup: "k/*/pod-*", kind: "batch" },
          { cgroup: "k/*", name: "ns-{1}", kind: "batch" },
        ],
      },
    });
    const d = withDiscovered(
      cfg,
      [found(0, "k/ns1/pod-1", "ns1", "1"), found(1, "k/ns1", "ns1"), found(1, "k/ns2", "ns2")],
      2000,
    );
    expect(d.discovered.map((x) => x.name)).toEqual(["ns1-1", "ns-ns2"]);
    expect(d.refused).toEqual([
      { cgroup: "k/ns1", template: 1, reason: "it holds partition ns1-1's cgroup" },
    ]);
  });

  it("refuses a name another partition has, and one that is not a partition name", () => {
    const cfg = configWith({
      partitions: [{ name: "web", cgroup: "weir/web", kind: "batch" }],
      discover: { partitions: [{ cgroup: "*/*", name: "{2}", kind: "batch" }] },
    });
    const d = withDiscovered(
      cfg,
      [
        found(0, "a/db", "a", "db"),
        found(0, "b/db", "b", "db"),
        found(0, "c/web", "c", "web"),
        found(0, "d/_tmp", "d", "_tmp"),
        found(0, "e/getty@tty1", "e", "getty@tty1"),
        found(0, "f/getty#tty1", "f", "getty#tty1"),
      ],
      2000,
    );
    expect(d.discovered).toEqual([
      { name: "db", cgroup: "a/db", template: 0 },
      { name: "getty_tty1", cgroup: "e/getty@tty1", template: 0 },
    ]);
    expect(d.refused.map((r) => [r.cgroup, r.reason])).toEqual([
      ["b/db", "its name db is another partition's"],
      ["c/web", "its name web is another partition's"],
      [
        "d/_tmp",
        `its name from "{2}" is not a partition name (1-63 letters, digits, '_', '.', '-', starting with a letter or digit)`,
      ],
      ["f/getty#tty1", "its name getty_tty1 is another partition's"],
    ]);
  });

  it("stops at discover.maxPartitions; a refused cgroup takes no place", () => {
    const cfg = configWith({
      partitions: [{ name: "web", cgroup: "weir/web", kind: "batch" }],
      discover: {
        maxPartitions: 2,
        partitions: [{ cgroup: "weir/*/*", name: "{2}", kind: "batch" }],
      },
    });
    const d = withDiscovered(
      cfg,
      [
        found(0, "weir/web/in", "web", "in"), // refused: inside web
        found(0, "weir/t/a", "t", "a"),
        found(0, "weir/t/b", "t", "b"),
        found(0, "weir/t/c", "t", "c"),
        found(0, "weir/t/d", "t", "d"),
      ],
      2000,
    );
    expect(d.discovered.map((x) => x.name)).toEqual(["a", "b"]);
    expect(d.config.partitions.map((p) => p.name)).toEqual(["web", "a", "b"]);
    expect(d.refused).toEqual([
      {
        cgroup: "weir/web/in",
        template: 0,
        reason: "it lies inside partition web's cgroup weir/web",
      },
      {
        cgroup: "weir/t/c",
        template: 0,
        reason: "discover.maxPartitions (2) are discovered already",
      },
      {
        cgroup: "weir/t/d",
        template: 0,
        reason: "discover.maxPartitions (2) are discovered already",
      },
    ]);
  });

  it("judges the cgroups managed last time first: one that appears never pushes one out", () => {
    const cfg = configWith({
      discover: {
        maxPartitions: 2,
        partitions: [{ cgroup: "weir/*", kind: "batch", min: 0.6 }],
      },
    });
    const all = [found(0, "weir/a", "a"), found(0, "weir/b", "b"), found(0, "weir/c", "c")];
    // b and c were managed; a appears, first by path
    const d = withDiscovered(cfg, all, 2000, new Set(["weir/b", "weir/c"]));
    expect(d.discovered.map((x) => x.name)).toEqual(["b", "c"]);
    expect(d.refused).toEqual([
      {
        cgroup: "weir/a",
        template: 0,
        reason: "discover.maxPartitions (2) are discovered already",
      },
    ]);
    // the same for a guarantee: b and c hold 1200m of 2000m, a's 600m still fits, not a fourth
    const roomy = configWith({
      discover: { maxPartitions: 10, partitions: [{ cgroup: "weir/*", kind: "batch", min: 0.8 }] },
    });
    const g = withDiscovered(roomy, all, 2000, new Set(["weir/c"]));
    expect(g.discovered.map((x) => x.name)).toEqual(["a", "c"]);
    expect(g.refused.map((r) => [r.cgroup, r.reason])).toEqual([
      [
        "weir/b",
        "its guarantee (800m) does not fit: the partitions' guarantees take 1600m of the capacity's 2000m",
      ],
    ]);
    // without what was managed, the order found decides
    expect(withDiscovered(cfg, all, 2000).discovered.map((x) => x.name)).toEqual(["a", "b"]);
  });

  it("refuses a cgroup whose guarantee would not fit the capacity; a smaller one may still", () => {
    const cfg = configWith({
      discover: {
        partitions: [
          { cgroup: "big/*", kind: "batch", min: 0.8 },
          { cgroup: "small/*", kind: "batch", min: "300m" },
        ],
      },
    });
    const d = withDiscovered(
      cfg,
      [
        found(0, "big/a", "a"),
        found(0, "big/b", "b"),
        found(0, "big/c", "c"),
        found(1, "small/d", "d"),
        found(1, "small/e", "e"),
      ],
      2000,
    );
    expect(d.discovered.map((x) => x.name)).toEqual(["a", "b", "d"]);
    expect(d.refused).toEqual([
      {
        cgroup: "big/c",
        template: 0,
        reason:
          "its guarantee (800m) does not fit: the partitions' guarantees take 1600m of the capacity's 2000m",
      },
      {
        cgroup: "small/e",
        template: 1,
        reason:
          "its guarantee (300m) does not fit: the partitions' guarantees take 1900m of the capacity's 2000m",
      },
    ]);
    // the configured partitions' guarantees are counted first
    const withWeb = configWith({
      partitions: [{ name: "web", cgroup: "weir/web", interfaces: ["vweb0"], min: 1 }],
      discover: { partitions: [{ cgroup: "big/*", kind: "batch", min: 0.8 }] },
    });
    const d2 = withDiscovered(withWeb, [found(0, "big/a", "a"), found(0, "big/b", "b")], 2000);
    expect(d2.discovered.map((x) => x.name)).toEqual(["a"]);
    expect(d2.refused[0]!.reason).toBe(
      "its guarantee (800m) does not fit: the partitions' guarantees take 1800m of the capacity's 2000m",
    );
  });

  it("counts the kernel's 10m quota floor for a partition weir may cap at its entitlement", () => {
    // network web guarantees 1990m (not capped: no floor); batch min 0 counts 10m while batch
    // suppression is on (policy.suppressBatchAfterCycles > 0, default 10), as withQuotaFloor does
    const base = {
      partitions: [{ name: "web", cgroup: "weir/web", interfaces: ["vweb0"], min: "1990m" }],
      discover: { partitions: [{ cgroup: "b/*", kind: "batch" as const }] },
    };
    const twoBatch = [found(0, "b/x", "x"), found(0, "b/y", "y")];
    const on = withDiscovered(configWith(base), twoBatch, 2000);
    expect(on.discovered.map((x) => x.name)).toEqual(["x"]);
    expect(on.refused).toEqual([
      {
        cgroup: "b/y",
        template: 0,
        reason:
          "its guarantee (10m) does not fit: the partitions' guarantees take 2000m of the capacity's 2000m",
      },
    ]);
    // suppression off: batch is never capped at its entitlement, its guarantee is its min (0)
    const off = withDiscovered(
      configWith({ ...base, policy: { suppressBatchAfterCycles: 0 } }),
      twoBatch,
      2000,
    );
    expect(off.discovered.map((x) => x.name)).toEqual(["x", "y"]);
    expect(off.refused).toEqual([]);
    // a capped partition is counted at the floor whatever the knob
    const capped = withDiscovered(
      configWith({
        ...base,
        policy: { suppressBatchAfterCycles: 0 },
        discover: { partitions: [{ cgroup: "n/*", packets: "bpf", capped: true }] },
      }),
      [found(0, "n/p", "p"), found(0, "n/q", "q")],
      2000,
    );
    expect(capped.discovered.map((x) => x.name)).toEqual(["p"]);
    expect(capped.refused[0]!.reason).toBe(
      "its guarantee (10m) does not fit: the partitions' guarantees take 2000m of the capacity's 2000m",
    );
    // a guarantee above the floor is counted as it is
    const above = withDiscovered(
      configWith({
        ...base,
        discover: { partitions: [{ cgroup: "b/*", kind: "batch", min: "5m" }] },
      }),
      twoBatch,
      2000,
    );
    expect(above.discovered.map((x) => x.name)).toEqual(["x"]);
    expect(above.refused[0]!.reason).toContain("its guarantee (10m)");
  });

  it("is pure: the same found cgroups give the same result, and the config is not changed", () => {
    const cfg = configWith({
      partitions: [{ name: "web", cgroup: "weir/web", kind: "batch" }],
      discover: { maxPartitions: 1, partitions: [{ cgroup: "weir/*", kind: "batch", min: 0.5 }] },
    });
    const before = structuredClone(cfg);
    const f = [found(0, "weir/a", "a"), found(0, "weir/b", "b"), found(0, "weir/web/z", "web")];
    const one = withDiscovered(cfg, f, 2000);
    const two = withDiscovered(cfg, structuredClone(f), 2000);
    expect(two).toEqual(one);
    expect(one.discovered).toHaveLength(1);
    expect(one.refused).toHaveLength(2);
    expect(cfg).toEqual(before);
  });

  it("gives a config without discover: back as it is, and ignores a template it does not have", () => {
    const cfg = configWith({ partitions: [{ name: "web", cgroup: "weir/web", kind: "batch" }] });
    const d = withDiscovered(cfg, [found(0, "weir/a", "a")], 2000);
    expect(d.config).toBe(cfg);
    expect(d.discovered).toEqual([]);
    expect(d.refused).toEqual([]);
    const withT = configWith({ discover: { partitions: [{ cgroup: "weir/*", kind: "batch" }] } });
    const e = withDiscovered(withT, [found(3, "weir/a", "a")], 2000);
    expect(e.discovered).toEqual([]);
    expect(e.refused).toEqual([]);
    expect(e.config.partitions).toEqual([]);
  });
});

describe("foundKey", () => {
  it("is the template and the path of each cgroup found, one a line", () => {
    expect(foundKey([found(0, "weir/a", "a"), found(1, "k/n/pod-1", "n", "1")])).toBe(
      "0\tweir/a\n1\tk/n/pod-1",
    );
    expect(foundKey([])).toBe("");
  });
});

describe("discoveryRoot and discoverNow", () => {
  it("finds the cpu controller's hierarchy: v2, v1's cpu, hybrid's unified; none gives null", () => {
    const { root } = tree(["empty"], {
      "v2/cgroup.controllers": "cpu\n",
      "v1/cpu/cpu.cfs_quota_us": "-1\n",
      "v1/cpuacct/cpuacct.usage": "0\n",
      "hybrid/unified/cgroup.controllers": "cpu io\n",
    });
    expect(discoveryRoot(path.join(root, "v2"))).toBe(path.join(root, "v2"));
    expect(discoveryRoot(path.join(root, "v1"))).toBe(path.join(root, "v1", "cpu"));
    expect(discoveryRoot(path.join(root, "hybrid"))).toBe(path.join(root, "hybrid", "unified"));
    expect(discoveryRoot(path.join(root, "empty"))).toBeNull();
    expect(discoveryRoot(path.join(root, "not-there"))).toBeNull();
  });

  const rootsOf = (root: string) => ({
    cgroupfs: path.join(root, "cg"),
    sysfs: path.join(root, "sys"),
    procfs: path.join(root, "proc"),
  });

  it("expands the templates on the tree as it is now; the key changes when a cgroup comes or goes", () => {
    const { root } = tree(["cg/weir/t/a", "cg/weir/t/b"], {
      "cg/cgroup.controllers": "cpu\n",
      "cg/weir/t/cgroup.procs": "",
    });
    const cfg = configWith({
      roots: rootsOf(root),
      partitions: [{ name: "web", cgroup: "weir/web", kind: "batch" }],
      discover: { partitions: [{ cgroup: "weir/t/*", name: "t-{1}", kind: "batch" }] },
    });
    const first = discoverNow(cfg, 4);
    expect(first.key).toBe("0\tweir/t/a\n0\tweir/t/b");
    expect(first.discovered).toEqual([
      { name: "t-a", cgroup: "weir/t/a", template: 0 },
      { name: "t-b", cgroup: "weir/t/b", template: 0 },
    ]);
    expect(first.refused).toEqual([]);
    expect(first.config.partitions.map((p) => [p.name, p.cgroup])).toEqual([
      ["web", "weir/web"],
      ["t-a", "weir/t/a"],
      ["t-b", "weir/t/b"],
    ]);
    // nothing changed: the same
    expect(discoverNow(cfg, 4)).toEqual(first);

    fs.mkdirSync(path.join(root, "cg/weir/t/c"));
    const second = discoverNow(cfg, 4);
    expect(second.key).toBe("0\tweir/t/a\n0\tweir/t/b\n0\tweir/t/c");
    expect(second.key).not.toBe(first.key);
    expect(second.config.partitions.map((p) => p.name)).toEqual(["web", "t-a", "t-b", "t-c"]);

    fs.rmdirSync(path.join(root, "cg/weir/t/a"));
    const third = discoverNow(cfg, 4);
    expect(third.key).toBe("0\tweir/t/b\n0\tweir/t/c");
    expect(third.discovered.map((x) => x.name)).toEqual(["t-b", "t-c"]);
  });

  it("counts guarantees against the capacity of the online CPUs given (capacity.cpus auto)", () => {
    const { root } = tree(["cg/w/a", "cg/w/b", "cg/w/c"], { "cg/cgroup.controllers": "cpu\n" });
    const cfg = parseConfig({
      roots: rootsOf(root),
      placement: { mode: "off" },
      discover: { partitions: [{ cgroup: "w/*", kind: "batch", min: 1 }] },
    });
    const two = discoverNow(cfg, 2);
    expect(two.discovered.map((x) => x.name)).toEqual(["a", "b"]);
    expect(two.refused).toEqual([
      {
        cgroup: "w/c",
        template: 0,
        reason:
          "its guarantee (1000m) does not fit: the partitions' guarantees take 2000m of the capacity's 2000m",
      },
    ]);
    expect(two.key).toBe("0\tw/a\n0\tw/b\n0\tw/c");
    const four = discoverNow(cfg, 4);
    expect(four.discovered.map((x) => x.name)).toEqual(["a", "b", "c"]);
    expect(four.refused).toEqual([]);
  });

  it("finds nothing where there is no cgroup hierarchy, and nothing to do without discover:", () => {
    const { root } = tree(["cg/weir/t/a"]); // no cgroup.controllers: not a cgroup tree
    const cfg = configWith({
      roots: rootsOf(root),
      partitions: [{ name: "web", cgroup: "weir/web", kind: "batch" }],
      discover: { partitions: [{ cgroup: "weir/t/*", kind: "batch" }] },
    });
    const none = discoverNow(cfg, 4);
    expect(none.key).toBe("");
    expect(none.discovered).toEqual([]);
    expect(none.refused).toEqual([]);
    expect(none.config.partitions.map((p) => p.name)).toEqual(["web"]);

    const plain = configWith({
      roots: rootsOf(root),
      partitions: [{ name: "web", cgroup: "weir/web", kind: "batch" }],
    });
    const d = discoverNow(plain, 4);
    expect(d).toEqual({ config: plain, discovered: [], refused: [], key: "", matched: new Set() });
    expect(d.config).toBe(plain);
  });
});
