// The counting program weir attaches at a cgroup's inet ingress and egress hooks
// (BPF_PROG_TYPE_CGROUP_SKB): it adds one packet and the packet's length to this CPU's slot
// of a per-CPU array and lets the packet pass. One map per partition, one value of four
// u64s: ingress packets, ingress bytes, egress packets, egress bytes. Pure.
import {
  add64Imm,
  atomicAdd64,
  BPF_FUNC_map_lookup_elem,
  call,
  exit,
  type Insn,
  jeqImm,
  ldMapFd,
  ldxW,
  mov64Imm,
  mov64Reg,
  R0,
  R1,
  R2,
  R6,
  R10,
  stW,
} from "./insn.ts";

/** struct counters { u64 ingress_packets, ingress_bytes, egress_packets, egress_bytes; } */
export const COUNTERS_VALUE_BYTES = 32;
export const INGRESS_PACKETS_OFFSET = 0;
export const EGRESS_PACKETS_OFFSET = 16;
/** offsetof(struct __sk_buff, len): the packet's length from its network header on. */
const SKB_LEN_OFFSET = 0;

/**
 * The program for one direction. In C (what clang would compile to the same instructions):
 *
 *     int count(struct __sk_buff *skb) {
 *       u32 key = 0;
 *       struct counters *c = bpf_map_lookup_elem(&map, &key);  // this CPU's value
 *       if (c) {
 *         __sync_fetch_and_add(&c->packets, 1);      // at packetsOffset
 *         __sync_fetch_and_add(&c->bytes, skb->len); // at packetsOffset + 8
 *       }
 *       return 1;  // SK_PASS: count, never drop
 *     }
 */
export function countingProgram(mapFd: number, packetsOffset: number): Insn[] {
  const skipTo = (from: number, to: number) => to - from - 1;
  const body: Insn[] = [
    mov64Reg(R6, R1), //                          r6 = skb
    stW(R10, -4, 0), //                           *(u32 *)(fp - 4) = 0        (key)
    mov64Reg(R2, R10), //                         r2 = fp
    add64Imm(R2, -4), //                          r2 = &key
    ...ldMapFd(R1, mapFd), //                     r1 = &map                    (2 slots: 4, 5)
    call(BPF_FUNC_map_lookup_elem), //            r0 = bpf_map_lookup_elem(r1, r2)
  ];
  const jumpAt = body.length; //                  7
  const rest: Insn[] = [
    mov64Imm(R1, 1), //                           r1 = 1
    atomicAdd64(R0, R1, packetsOffset), //        c->packets += 1
    ldxW(R1, R6, SKB_LEN_OFFSET), //              r1 = skb->len
    atomicAdd64(R0, R1, packetsOffset + 8), //    c->bytes += skb->len
  ];
  const outAt = jumpAt + 1 + rest.length;
  return [
    ...body,
    jeqImm(R0, 0, skipTo(jumpAt, outAt)), //      if (!c) goto out
    ...rest,
    mov64Imm(R0, 1), //                           out: r0 = 1 (pass)
    exit(),
  ];
}
