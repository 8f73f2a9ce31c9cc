// Child process for tests: a hostile agent. It opens its own slot by path (as any agent
// does) and then does what a partition could do to the manager through it, printing one
// JSON line per step. Usage: node --import tsx shm-hostile-agent.ts <dir> <slot> <mode>
// mode "scribble": 0xFF over every byte of its mapping (its report lock left odd), then
//   tries to shrink and to grow the file (both must be refused), prints {scribbled, shrink,
//   grow} and stays alive until its stdin closes, holding the lock odd.
// mode "overreach": maps two pages of its one-page slot and touches the second: the kernel
//   kills it with SIGBUS, since its slot is all there is behind its mapping.
import { closeSync, ftruncateSync, openSync } from "node:fs";
import { mapFd } from "./mmap.ts";
import { agentSlotFile, SLOT_BYTES } from "./shm.ts";

const [dir, slotArg, mode] = process.argv.slice(2);
if (dir === undefined || slotArg === undefined || mode === undefined) {
  process.stderr.write("usage: shm-hostile-agent <dir> <slot> scribble|overreach\n");
  process.exit(2);
}
const file = agentSlotFile(dir, Number(slotArg));
const fd = openSync(file, "r+");
const tryTruncate = (len: number): string => {
  try {
    ftruncateSync(fd, len);
    return "done";
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? "error";
  }
};
if (mode === "scribble") {
  const m = mapFd(fd, SLOT_BYTES, file);
  new Uint8Array(m.buffer).fill(0xff);
  const shrink = tryTruncate(0);
  const grow = tryTruncate(SLOT_BYTES * 2);
  closeSync(fd);
  process.stdout.write(`${JSON.stringify({ scribbled: m.length, shrink, grow })}\n`);
  process.stdin.resume();
  process.stdin.on("end", () => process.exit(0));
} else if (mode === "overreach") {
  const m = mapFd(fd, SLOT_BYTES * 2, file);
  const bytes = new Uint8Array(m.buffer);
  bytes[0] = 1;
  process.stdout.write(`${JSON.stringify({ firstPage: "written" })}\n`);
  bytes[SLOT_BYTES] = 1; // beyond the slot: SIGBUS
  process.stdout.write(`${JSON.stringify({ secondPage: "written" })}\n`);
} else process.exit(2);
