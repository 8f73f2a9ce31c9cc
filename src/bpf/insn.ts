// eBPF instructions assembled in TypeScript: the opcodes of the kernel's uapi headers
// (linux/bpf_common.h, linux/bpf.h), one helper per instruction form with the C it stands
// for, and the 8-byte encoding the kernel reads (struct bpf_insn, little-endian). Pure.

/** Instruction classes (low 3 bits of the opcode). */
export const BPF_LD = 0x00;
export const BPF_LDX = 0x01;
export const BPF_ST = 0x02;
export const BPF_STX = 0x03;
export const BPF_ALU = 0x04;
export const BPF_JMP = 0x05;
export const BPF_ALU64 = 0x07;
/** Sizes (ld/st). */
export const BPF_W = 0x00;
export const BPF_H = 0x08;
export const BPF_B = 0x10;
export const BPF_DW = 0x18;
/** Modes (ld/st). */
export const BPF_IMM = 0x00;
export const BPF_MEM = 0x60;
export const BPF_ATOMIC = 0xc0;
/** ALU and jump operations. */
export const BPF_ADD = 0x00;
export const BPF_MOV = 0xb0;
export const BPF_JEQ = 0x10;
export const BPF_CALL = 0x80;
export const BPF_EXIT = 0x90;
/** Operand source: the immediate (K) or a register (X). */
export const BPF_K = 0x00;
export const BPF_X = 0x08;
/** `src_reg` of a 64-bit immediate load that names a map by its fd (linux/bpf.h). */
export const BPF_PSEUDO_MAP_FD = 1;
/** Helper ids (enum bpf_func_id). */
export const BPF_FUNC_map_lookup_elem = 1;

/** Registers: r0 return value, r1-r5 arguments, r6-r9 callee-saved, r10 frame pointer. */
export const R0 = 0;
export const R1 = 1;
export const R2 = 2;
export const R3 = 3;
export const R6 = 6;
export const R10 = 10;

/** struct bpf_insn { u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm; } */
export interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

const insn = (code: number, dst: number, src: number, off: number, imm: number): Insn => ({
  code,
  dst,
  src,
  off,
  imm,
});

/** `dst = src` (64-bit). */
export const mov64Reg = (dst: number, src: number): Insn =>
  insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
/** `dst = imm` (64-bit, sign-extended). */
export const mov64Imm = (dst: number, imm: number): Insn =>
  insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
/** `dst += imm` (64-bit). */
export const add64Imm = (dst: number, imm: number): Insn =>
  insn(BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, imm);
/** `*(u32 *)(dst + off) = imm`. */
export const stW = (dst: number, off: number, imm: number): Insn =>
  insn(BPF_ST | BPF_MEM | BPF_W, dst, 0, off, imm);
/** `dst = *(u32 *)(src + off)`. */
export const ldxW = (dst: number, src: number, off: number): Insn =>
  insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0);
/** `__sync_fetch_and_add((u64 *)(dst + off), src)` — atomic, so nested runs on one CPU lose nothing. */
export const atomicAdd64 = (dst: number, src: number, off: number): Insn =>
  insn(BPF_STX | BPF_ATOMIC | BPF_DW, dst, src, off, BPF_ADD);
/** `if (dst == imm) goto pc + 1 + off`. */
export const jeqImm = (dst: number, imm: number, off: number): Insn =>
  insn(BPF_JMP | BPF_JEQ | BPF_K, dst, 0, off, imm);
/** `r0 = helper(r1, ..., r5)`. */
export const call = (helper: number): Insn => insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper);
/** `return r0`. */
export const exit = (): Insn => insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
/**
 * `dst = &map` — a 64-bit immediate load (two instruction slots) whose src_reg
 * BPF_PSEUDO_MAP_FD tells the verifier that imm is a map's fd; it rewrites it to the map.
 */
export const ldMapFd = (dst: number, mapFd: number): [Insn, Insn] => [
  insn(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, mapFd),
  insn(0, 0, 0, 0, 0),
];

/** The program as the kernel reads it: 8 bytes per instruction, little-endian. */
export function encodeInsns(insns: readonly Insn[]): Uint8Array {
  const out = new Uint8Array(insns.length * 8);
  const v = new DataView(out.buffer);
  insns.forEach((i, k) => {
    if (i.dst < 0 || i.dst > 10 || i.src < 0 || i.src > 10)
      throw new RangeError(
        `instruction ${k}: registers are r0-r10: got dst ${i.dst}, src ${i.src}`,
      );
    v.setUint8(k * 8, i.code);
    v.setUint8(k * 8 + 1, (i.src << 4) | i.dst);
    v.setInt16(k * 8 + 2, i.off, true);
    v.setInt32(k * 8 + 4, i.imm, true);
  });
  return out;
}
