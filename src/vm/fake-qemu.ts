// Test support: a stand-in for a QEMU process and its guest where booting one would cost a
// minute of TCG (the actuator contract's unit run). It follows what QEMU 7.2 does on this host
// (src/vm/README.md, the e2e runs of test/e2e/vm-guest.e2e.test.ts): the QMP greeting, then
// nothing but `qmp_capabilities` until negotiated; `query-hotpluggable-cpus` lists every slot
// (`max-x86_64-cpu`, socket 0, core i, thread 0; `qom-path` only when plugged: the boot vCPU
// under /machine/unattached, hot-plugged ones under /machine/peripheral/<id>);
// `device_add` plugs a free slot (an occupied or unknown one is a GenericError) and the
// guest's agent onlines the new CPU (the kernel's "smpboot: Booting Node 0 Processor N" on
// the console); `device_del` of an unknown id is DeviceNotFound, else it returns at once and
// the guest kernel offlines the CPU ("smpboot: CPU N is now offline"), then QEMU frees the
// slot and emits DEVICE_DELETED. `kill()` is QEMU exiting: the socket closes.
import { appendFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";

interface Slot {
  core: number;
  /** Device id when plugged by device_add; "boot" for the boot vCPU; null when free. */
  id: string | null;
  /** The CPU number the guest kernel gave it (while plugged). */
  cpu: number | null;
}

export interface FakeQemuOptions {
  qmpSocket: string;
  consoleLog: string;
  /** `-smp 1,maxcpus=N`. */
  maxCpus: number;
  /** How long the guest takes to online or offline a vCPU (default 20 ms). */
  guestDelayMs?: number;
}

export class FakeQemu {
  private readonly o: FakeQemuOptions;
  private readonly server: Server;
  private readonly clients = new Set<Socket>();
  private readonly slots: Slot[];
  private pendingGuest = 0;
  private lastCommandAtMs = 0;
  private negotiatedClients = 0;
  /** Commands received, in order (tests assert on what was asked). */
  readonly commands: string[] = [];
  /** Make the next command of this name fail with this QMP error class and text. */
  failNext: { command: string; cls: string; desc: string } | null = null;

  private constructor(o: FakeQemuOptions) {
    this.o = o;
    this.slots = Array.from({ length: o.maxCpus }, (_, core) => ({
      core,
      id: core === 0 ? "boot" : null,
      cpu: core === 0 ? 0 : null,
    }));
    this.server = createServer((s) => this.serve(s));
  }

  static async start(o: FakeQemuOptions): Promise<FakeQemu> {
    const q = new FakeQemu(o);
    writeFileSync(o.consoleLog, "Linux version 6.1.0 (fake guest)\nweir-vm: ready\n");
    await new Promise<void>((resolve, reject) => {
      q.server.once("error", reject);
      q.server.listen(o.qmpSocket, () => resolve());
    });
    return q;
  }

  /** vCPUs plugged / CPUs the guest has online. */
  plugged(): number {
    return this.slots.filter((s) => s.id !== null).length;
  }

  /**
   * Resolves once a client has negotiated and nothing happened for `quietMs` (no command, no
   * guest reaction pending): what a client asked for has then taken effect. Bounded.
   */
  async quiet(quietMs = 250, timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const calm =
        this.negotiatedClients > 0 &&
        this.pendingGuest === 0 &&
        Date.now() - this.lastCommandAtMs >= quietMs;
      if (calm) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** QEMU exits: every QMP connection closes, the socket goes. */
  async kill(): Promise<void> {
    for (const c of this.clients) c.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.o.qmpSocket, { force: true });
  }

  private console(line: string): void {
    appendFileSync(this.o.consoleLog, `[ ${(performance.now() / 1000).toFixed(6)}] ${line}\n`);
  }

  private later(fn: () => void): void {
    this.pendingGuest++;
    setTimeout(() => {
      this.pendingGuest--;
      fn();
    }, this.o.guestDelayMs ?? 20);
  }

  private serve(sock: Socket): void {
    this.clients.add(sock);
    sock.on("close", () => this.clients.delete(sock));
    sock.on("error", () => {});
    sock.setEncoding("utf8");
    const send = (msg: unknown) => {
      if (!sock.destroyed) sock.write(`${JSON.stringify(msg)}\n`);
    };
    send({
      QMP: {
        version: { qemu: { micro: 19, minor: 2, major: 7 }, package: "Debian 1:7.2+dfsg-7" },
        capabilities: ["oob"],
      },
    });
    let negotiated = false;
    let buf = "";
    sock.on("data", (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === "") continue;
        const msg = JSON.parse(line) as {
          execute: string;
          arguments?: Record<string, unknown>;
          id?: unknown;
        };
        this.lastCommandAtMs = Date.now();
        this.commands.push(msg.execute);
        const reply = (r: { return: unknown } | { error: { class: string; desc: string } }) =>
          send({ ...r, ...(msg.id !== undefined ? { id: msg.id } : {}) });
        if (!negotiated) {
          if (msg.execute === "qmp_capabilities") {
            negotiated = true;
            this.negotiatedClients++;
            reply({ return: {} });
          } else
            reply({
              error: {
                class: "CommandNotFound",
                desc: "Expecting capabilities negotiation with 'qmp_capabilities'",
              },
            });
          continue;
        }
        const f = this.failNext;
        if (f && f.command === msg.execute) {
          this.failNext = null;
          reply({ error: { class: f.cls, desc: f.desc } });
          continue;
        }
        reply(this.execute(msg.execute, msg.arguments ?? {}, send));
      }
    });
  }

  private execute(
    command: string,
    args: Record<string, unknown>,
    emit: (msg: unknown) => void,
  ): { return: unknown } | { error: { class: string; desc: string } } {
    const props = (s: Slot) => ({ "socket-id": 0, "core-id": s.core, "thread-id": 0 });
    const path = (s: Slot) =>
      s.id === "boot" ? "/machine/unattached/device[0]" : `/machine/peripheral/${s.id}`;
    switch (command) {
      case "query-hotpluggable-cpus":
        return {
          return: [...this.slots].reverse().map((s) => ({
            props: props(s),
            "vcpus-count": 1,
            type: "max-x86_64-cpu",
            ...(s.id !== null ? { "qom-path": path(s) } : {}),
          })),
        };
      case "query-cpus-fast":
        return {
          return: this.slots
            .filter((s) => s.id !== null)
            .map((s, i) => ({
              "cpu-index": i,
              "qom-path": path(s),
              "thread-id": 1000 + s.core,
              props: props(s),
              target: "x86_64",
            })),
        };
      case "device_add": {
        const slot = this.slots.find((s) => s.core === args["core-id"]);
        if (args.driver !== "max-x86_64-cpu" || !slot || args["socket-id"] !== 0)
          return { error: { class: "GenericError", desc: "Invalid CPU core-id" } };
        if (slot.id !== null)
          return {
            error: {
              class: "GenericError",
              desc: `CPU[${slot.core}] with APIC ID ${slot.core} exists`,
            },
          };
        slot.id = String(args.id);
        const used = new Set(this.slots.map((s) => s.cpu));
        let cpu = 0;
        while (used.has(cpu)) cpu++;
        slot.cpu = cpu;
        this.later(() =>
          this.console(`smpboot: Booting Node 0 Processor ${cpu} APIC 0x${slot.core.toString(16)}`),
        );
        return { return: {} };
      }
      case "device_del": {
        const slot = this.slots.find((s) => s.id === args.id && s.id !== "boot");
        if (!slot)
          return {
            error: { class: "DeviceNotFound", desc: `Device '${String(args.id)}' not found` },
          };
        const id = slot.id!;
        this.later(() => {
          this.console(`smpboot: CPU ${slot.cpu} is now offline`);
          slot.id = null;
          slot.cpu = null;
          emit({
            event: "DEVICE_DELETED",
            data: { device: id, path: `/machine/peripheral/${id}` },
            timestamp: { seconds: Math.floor(Date.now() / 1000), microseconds: 0 },
          });
        });
        return { return: {} };
      }
      default:
        return {
          error: { class: "CommandNotFound", desc: `The command ${command} has not been found` },
        };
    }
  }
}
