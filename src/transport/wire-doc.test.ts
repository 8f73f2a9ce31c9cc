// docs/wire-formats.md must say what the code does: its example bytes are re-encoded here,
// and its Python encoder is run and its output verified by the TypeScript verifier.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  DirectiveVerifier,
  encodeDirective,
  encodeReport,
  KeyRing,
  parseKeyHex,
  REJECT_REASONS,
  ReportVerifier,
} from "./codec.ts";

const doc = readFileSync(
  fileURLToPath(new URL("../../docs/wire-formats.md", import.meta.url)),
  "utf8",
);
const KEY = parseKeyHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
const REPORT = {
  partitionIndex: 2,
  sequence: 1795815000000001,
  timestampMs: 1795815000123,
  rxPackets: 123456,
  txPackets: 120000,
  droppedPackets: 3456,
  cpuUsageNs: 30000000000,
  nrPeriods: 600,
  nrThrottled: 12,
  throttledNs: 240000000,
  velocityPacketsPerCpuSec: 4000.5,
  velocityWindowMs: 100,
};
const DIRECTIVE = {
  partitionIndex: 2,
  sequence: 1795815000200000,
  timestampMs: 1795815000200,
  cpuMillis: 1500,
  weight: 250,
  cpuCount: 2,
};

function block(tag: string): string {
  const m = new RegExp("```" + tag + "\\n([\\s\\S]*?)```").exec(doc);
  if (!m) throw new Error(`no \`\`\`${tag} block in docs/wire-formats.md`);
  return m[1]!;
}
const hexBlock = (tag: string) =>
  block(tag)
    .split("\n")
    .map((l) => l.replace(/^\d+:/, "").replace(/\s+/g, ""))
    .join("");

describe("docs/wire-formats.md", () => {
  it("shows the report bytes the codec produces", () => {
    expect(hexBlock("hex report")).toBe(Buffer.from(encodeReport(REPORT, KEY)).toString("hex"));
  });

  it("shows the directive bytes the codec produces", () => {
    expect(hexBlock("hex directive")).toBe(
      Buffer.from(encodeDirective(DIRECTIVE, KEY)).toString("hex"),
    );
  });

  it("has a Python encoder whose report the verifier accepts and whose decoder reads our directive", () => {
    const py = block("python");
    const out = execFileSync("python3", ["-c", py], { encoding: "utf8" }).trim();
    expect(out).toBe(Buffer.from(encodeReport(REPORT, KEY)).toString("hex"));
    const v = new ReportVerifier({
      keys: new KeyRing([{ index: 2, id: "web", key: KEY }]),
      now: () => REPORT.timestampMs,
    });
    expect(v.verify(Buffer.from(out, "hex"))).toMatchObject({ ok: true, message: REPORT });
    const dHex = Buffer.from(encodeDirective(DIRECTIVE, KEY)).toString("hex");
    const decoded = execFileSync(
      "python3",
      [
        "-c",
        `${py.replace(/if __name__[\s\S]*$/, "")}\nimport json\nprint(json.dumps(decode_directive(bytes(range(32)), bytes.fromhex("${dHex}"))))`,
      ],
      { encoding: "utf8" },
    );
    expect(JSON.parse(decoded)).toEqual({
      index: 2,
      seq: DIRECTIVE.sequence,
      ts_ms: DIRECTIVE.timestampMs,
      cap_millis: 1500,
      weight: 250,
      cpu_count: 2,
      idle: false,
    });
    const dv = new DirectiveVerifier({
      keys: new KeyRing([{ index: 2, id: "web", key: KEY }]),
      now: () => DIRECTIVE.timestampMs,
    });
    expect(dv.verify(Buffer.from(dHex, "hex")).ok).toBe(true);
  });
});

describe("README.md, Wire formats", () => {
  const readme = readFileSync(fileURLToPath(new URL("../../README.md", import.meta.url)), "utf8");
  const section = /\n## Wire formats\n([\s\S]*?)\n## /.exec(readme)?.[1] ?? "";

  it("names every reason a rejection is counted under", () => {
    const missing = REJECT_REASONS.filter((r) => !section.includes(r));
    expect(missing, `reasons README.md's Wire formats section does not name`).toEqual([]);
  });

  it("says, as the verifier does, that a timestamp ahead of the run is accepted", () => {
    expect(section).toMatch(/ahead of the sender's run is not refused/);
    let now = REPORT.timestampMs;
    const v = new ReportVerifier({
      keys: new KeyRing([{ index: 2, id: "web", key: KEY }]),
      now: () => now,
    });
    expect(v.verify(encodeReport(REPORT, KEY)).ok).toBe(true);
    now += 100;
    const ahead = { ...REPORT, sequence: REPORT.sequence + 1, timestampMs: now + 3_600_000 };
    expect(v.verify(encodeReport(ahead, KEY)).ok).toBe(true);
    expect(v.rejected().future).toBe(0);
  });
});
