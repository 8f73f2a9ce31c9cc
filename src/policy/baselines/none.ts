// No manager: the kernel's CFS alone, every partition with the default cpu.shares and no cap.
// The policy decides nothing and writes nothing; the partitions keep what they were created with.
import type { Policy, PolicyState } from "../types.ts";

export function nonePolicy(): Policy {
  return {
    name: "none",
    initialState: (): PolicyState => ({ partitions: {} }),
    step: (_input, state) => ({ directives: [], decisions: [], state }),
  };
}
