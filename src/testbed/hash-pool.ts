// Worker threads that burn a request's SHA-256 rounds for the packet server (server.ts with
// `workers` > 1), so one server process can use more than one CPU. The UDP socket stays on the
// main thread — replies leave from the port the client sent to, as its connected socket
// requires — and each request's 16-byte header goes to the worker with the fewest requests in
// hand. The threads are the server process's own: its cgroup, its namespace, its pid.
import { Worker } from "node:worker_threads";

/**
 * The worker: burnRounds (server.ts) over the header it is sent, the first 8 bytes of the last
 * digest back. Inline CommonJS, so it runs the same from the sources, dist/ and the tests
 * (server.test.ts checks it gives burnRounds' digest).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { createHash } = require("node:crypto");
parentPort.on("message", (m) => {
  let d = Buffer.from(m.seed.buffer, m.seed.byteOffset, m.seed.byteLength);
  for (let i = 0; i < workerData.rounds; i++) d = createHash("sha256").update(d).digest();
  parentPort.postMessage({ id: m.id, digest: d.subarray(0, 8) });
});`;

interface Thread {
  worker: Worker;
  inHand: Set<number>;
}

export class HashPool {
  private readonly threads: Thread[];
  private readonly pending = new Map<number, (digest: Uint8Array) => void>();
  private nextId = 0;
  private lost = 0;

  constructor(
    threads: number,
    private readonly rounds: number,
    private readonly inline: (seed: Buffer) => Buffer,
  ) {
    this.threads = Array.from({ length: threads }, () => this.spawn());
  }

  private spawn(): Thread {
    const t: Thread = {
      worker: new Worker(WORKER_SOURCE, { eval: true, workerData: { rounds: this.rounds } }),
      inHand: new Set(),
    };
    t.worker.on("message", (m: { id: number; digest: Uint8Array }) => {
      t.inHand.delete(m.id);
      const done = this.pending.get(m.id);
      this.pending.delete(m.id);
      done?.(m.digest);
    });
    // A thread that dies takes its requests with it (the client counts them lost); the
    // others go on, and with none left the main thread burns the rounds itself.
    t.worker.on("error", () => {});
    t.worker.on("exit", () => {
      const i = this.threads.indexOf(t);
      if (i >= 0) this.threads.splice(i, 1);
      for (const id of t.inHand) if (this.pending.delete(id)) this.lost++;
    });
    t.worker.unref();
    return t;
  }

  /** Threads still running. */
  size(): number {
    return this.threads.length;
  }

  /** Requests a thread took and never answered (it died). */
  lostRequests(): number {
    return this.lost;
  }

  /** Burns `seed` (copied) on the least busy thread; `done` gets the digest's first 8 bytes. */
  burn(seed: Buffer, done: (digest: Uint8Array) => void): void {
    let t: Thread | undefined;
    for (const x of this.threads) if (!t || x.inHand.size < t.inHand.size) t = x;
    if (!t) {
      done(this.inline(seed).subarray(0, 8));
      return;
    }
    const id = this.nextId++;
    this.pending.set(id, done);
    t.inHand.add(id);
    t.worker.postMessage({ id, seed: Uint8Array.from(seed) });
  }

  async close(): Promise<void> {
    const ts = this.threads.splice(0);
    this.pending.clear();
    await Promise.all(ts.map((t) => t.worker.terminate()));
  }
}
