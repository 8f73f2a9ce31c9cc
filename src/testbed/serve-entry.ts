// Light entry point the testbed spawns inside a namespace:
//   node --import tsx src/testbed/serve-entry.ts --port P --cost-rounds R --max-lifetime-ms M
// It loads only the server, not the whole CLI (faster start, less memory per partition).
import { parseServeArgv, runPacketServer } from "./serve.ts";

try {
  await runPacketServer(parseServeArgv(process.argv.slice(2)));
} catch (err) {
  process.stderr.write(`weir testbed serve: ${(err as Error).message}\n`);
  process.exit(2);
}
