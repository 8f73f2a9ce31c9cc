// Ports on 127.0.0.1 nobody listens on at the moment of asking, for the service tests (a test
// under src/ cannot import test/e2e/wait.ts's).
import dgram from "node:dgram";
import { type AddressInfo, createServer } from "node:net";

/** A TCP port nobody listens on now. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A UDP port nobody has bound now. */
export async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(r));
  return port;
}
