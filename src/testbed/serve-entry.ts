// Light entry point the testbed spawns inside a namespace:
//   node dist/src/testbed/serve-entry.js --port P --cost-rounds R --max-lifetime-ms M
// (from the sources: node --import tsx src/testbed/serve-entry.ts ...; testbed.ts picks the one
// it runs from itself).
// It loads only the server, not the whole CLI (faster start, less memory per partition).
import { parseServeArgv, runServeProcess } from "./serve.ts";

try {
  await runServeProcess(parseServeArgv(process.argv.slice(2)));
} catch (err) {
  process.stderr.write(`weir testbed serve: ${(err as Error).message}\n`);
  process.exit(2);
}
