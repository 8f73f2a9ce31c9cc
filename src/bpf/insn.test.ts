import { describe, expect, it } from "vitest";
import { atomicAdd64, encodeInsns, exit, ldMapFd, mov64Imm, R0, R1 } from "./insn.ts";
import { countingProgram, EGRESS_PACKETS_OFFSET } from "./programs.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("eBPF instruction encoding (struct bpf_insn, little-endian)", () => {
  it("encodes the forms as llvm-objdump shows them", () => {
    // b7 00 00 00 01 00 00 00   r0 = 1
    // 95 00 00 00 00 00 00 00   exit
    expect(hex(encodeInsns([mov64Imm(R0, 1), exit()]))).toBe("b7000000010000009500000000000000");
    // db 10 10 00 00 00 00 00   lock *(u64 *)(r0 + 16) += r1   (0xdb = STX | ATOMIC | DW)
    expect(hex(encodeInsns([atomicAdd64(R0, R1, 16)]))).toBe("db10100000000000");
    // 18 11 00 00 07 00 00 00 + 8 zero bytes   r1 = map fd 7 (src_reg 1 = BPF_PSEUDO_MAP_FD)
    expect(hex(encodeInsns(ldMapFd(R1, 7)))).toBe(`1811000007000000${"0".repeat(16)}`);
  });

  it("refuses registers outside r0-r10", () => {
    expect(() => encodeInsns([mov64Imm(11, 0)])).toThrow(/registers are r0-r10: got dst 11/);
  });

  it("the counting program: lookup, a null check that jumps to `return 1`, two atomic adds", () => {
    const p = countingProgram(5, EGRESS_PACKETS_OFFSET);
    expect(p).toHaveLength(14);
    const jeq = p[7]!;
    expect(jeq.code).toBe(0x15); // JMP | JEQ | K
    expect(7 + 1 + jeq.off).toBe(12); // lands on r0 = 1
    expect(p[12]).toEqual(mov64Imm(R0, 1));
    expect(p.filter((i) => i.code === 0xdb).map((i) => i.off)).toEqual([16, 24]);
  });
});
