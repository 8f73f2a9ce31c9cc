// A UDP (IPv4) socket read in batches: libc's socket, bind and recvmmsg(2) through koffi, so
// one call into native code and one system call receive up to BATCH datagrams, read in place
// from one reused native buffer. node:dgram makes a Buffer, an address object and a JavaScript
// callback per datagram, and libuv a recvmsg(2) per datagram: on the 2-vCPU guests this project
// is measured on, node:dgram alone received 105,000–182,000 empty datagrams per CPU-second
// before any verification (docs/performance.md, *Batched datagram receive*). The socket is
// non-blocking and nothing watches it: its owner drains it when it wants what has arrived
// (DatagramReportSource.poll(): when latest() is read, and on a timer while datagrams keep coming).
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { ffi, freeNativeMemory, type NativeMemory, nativeMemory } from "./ffi.ts";

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const EAGAIN = 11;
const EINTR = 4;

/** Datagrams one recvmmsg call may return. */
export const BATCH = 64;
// struct mmsghdr (x86-64 and arm64, LP64): a struct msghdr of 56 bytes, then msg_len.
const MMSG_BYTES = 64;
const MSG_NAME = 0;
const MSG_NAMELEN = 8;
const MSG_IOV = 16;
const MSG_IOVLEN = 24;
const MSG_LEN = 56;
const IOV_BYTES = 16;
const SOCKADDR_IN_BYTES = 16;

interface Libc {
  socket: (domain: number, type: number, protocol: number) => number;
  setsockopt: (fd: number, level: number, name: number, value: Int32Array, len: number) => number;
  getsockopt: (
    fd: number,
    level: number,
    name: number,
    value: Int32Array,
    len: Uint32Array,
  ) => number;
  bind: (fd: number, addr: Uint8Array, len: number) => number;
  getsockname: (fd: number, addr: Uint8Array, len: Uint32Array) => number;
  recvmmsg: (fd: number, vec: bigint, vlen: number, flags: number, timeout: null) => number;
  sendto: (
    fd: number,
    buf: Uint8Array,
    len: number,
    flags: number,
    addr: Uint8Array,
    addrLen: number,
  ) => number;
  close: (fd: number) => number;
  strerror: (errnum: number) => string;
}

let libc: Libc | null | undefined;

/** libc's socket calls, or null where they cannot be loaded (then node:dgram serves). */
export function loadSocketCalls(): Libc | null {
  if (libc !== undefined) return libc;
  try {
    const lib = ffi().load("libc.so.6");
    libc = {
      socket: lib.func("int socket(int domain, int type, int protocol)"),
      setsockopt: lib.func(
        "int setsockopt(int fd, int level, int optname, const void *optval, uint32_t optlen)",
      ),
      getsockopt: lib.func(
        "int getsockopt(int fd, int level, int optname, void *optval, uint32_t *optlen)",
      ),
      bind: lib.func("int bind(int fd, const void *addr, uint32_t addrlen)"),
      getsockname: lib.func("int getsockname(int fd, void *addr, uint32_t *addrlen)"),
      recvmmsg: lib.func(
        "int recvmmsg(int fd, uintptr_t msgvec, unsigned int vlen, int flags, void *timeout)",
      ),
      sendto: lib.func(
        "long sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)",
      ),
      close: lib.func("int close(int fd)"),
      strerror: lib.func("const char *strerror(int errnum)"),
    };
  } catch {
    libc = null;
  }
  return libc;
}

/** "a.b.c.d" as the address's 32 bits (host order), or null when it is not an IPv4 literal. */
export function ipv4ToU32(address: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (m === null) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function u32ToIpv4(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** A struct sockaddr_in for address:port. */
function sockaddrIn(address: number, port: number): Uint8Array {
  const b = new Uint8Array(SOCKADDR_IN_BYTES);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_INET, true);
  v.setUint16(2, port, false);
  v.setUint32(4, address, false);
  return b;
}

/**
 * Called for each datagram a drain reads: its bytes are `bytes[at, at + length)`, valid only
 * during the call (the next batch reuses them). `length` is what the kernel copied, at most the slot's size, so a
 * longer datagram arrives as `slotBytes` bytes (one more than the largest message it was sized
 * for: too long either way). The sender is `address` (32 bits, host order) and `port`.
 */
export type OnDatagram = (
  bytes: Uint8Array,
  at: number,
  length: number,
  address: number,
  port: number,
) => void;

export class BatchUdpSocket {
  private readonly base: bigint;
  private readonly mem: NativeMemory;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly namesAt: number;
  private readonly dataAt: number;
  private readonly stride: number;
  private closed = false;

  private constructor(
    private readonly c: Libc,
    private readonly fd: number,
    /** Bytes read of each datagram: the largest message + 1, so a longer one shows. */
    readonly slotBytes: number,
    private readonly bound: { address: number; port: number },
    /**
     * The receive buffer the kernel gave (SO_RCVBUF as read back: twice what was asked, up to
     * twice rmem_max, for its own overhead), bytes; 0 when it could not be read.
     */
    readonly receiveBufferBytes: number,
  ) {
    this.stride = (slotBytes + 7) & ~7;
    const iovAt = BATCH * MMSG_BYTES;
    this.namesAt = iovAt + BATCH * IOV_BYTES;
    this.dataAt = this.namesAt + BATCH * SOCKADDR_IN_BYTES;
    this.mem = nativeMemory(this.dataAt + BATCH * this.stride);
    this.base = this.mem.address;
    this.bytes = this.mem.bytes;
    this.view = this.mem.view;
    const v = this.view;
    for (let i = 0; i < BATCH; i++) {
      const m = i * MMSG_BYTES;
      const iov = iovAt + i * IOV_BYTES;
      v.setBigUint64(m + MSG_NAME, this.base + BigInt(this.namesAt + i * SOCKADDR_IN_BYTES), true);
      v.setUint32(m + MSG_NAMELEN, SOCKADDR_IN_BYTES, true);
      v.setBigUint64(m + MSG_IOV, this.base + BigInt(iov), true);
      v.setBigUint64(m + MSG_IOVLEN, 1n, true);
      v.setBigUint64(iov, this.base + BigInt(this.dataAt + i * this.stride), true);
      v.setBigUint64(iov + 8, BigInt(slotBytes), true);
    }
  }

  /**
   * A non-blocking UDP socket bound to address:port (an IPv4 literal; port 0 = any free one),
   * with its receive buffer asked for `receiveBufferBytes` (the kernel caps it at rmem_max).
   * Throws a WeirError (transport) naming the address when it cannot.
   */
  static open(
    c: Libc,
    address: string,
    port: number,
    receiveBufferBytes: number,
    slotBytes: number,
  ): BatchUdpSocket {
    const where = `${address}:${port}`;
    const a = ipv4ToU32(address === "localhost" ? "127.0.0.1" : address);
    if (a === null)
      throw new WeirError(
        ErrorCodes.TRANSPORT,
        `cannot bind UDP ${where}: the address must be an IPv4 literal such as 127.0.0.1 or 0.0.0.0`,
      );
    const fail = (what: string, fd: number): never => {
      const e = ffi().errno();
      if (fd >= 0) c.close(fd);
      throw new WeirError(
        ErrorCodes.TRANSPORT,
        `cannot bind UDP ${where}: ${what}: ${c.strerror(e)}`,
      );
    };
    const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket", fd);
    // best effort, as node:dgram's setRecvBufferSize: the kernel default still works
    c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, Int32Array.of(receiveBufferBytes), 4);
    if (c.bind(fd, sockaddrIn(a, port), SOCKADDR_IN_BYTES) !== 0) fail("bind", fd);
    const name = new Uint8Array(SOCKADDR_IN_BYTES);
    const len = Uint32Array.of(SOCKADDR_IN_BYTES);
    if (c.getsockname(fd, name, len) !== 0) fail("getsockname", fd);
    const nv = new DataView(name.buffer);
    const got = new Int32Array(1);
    const gotLen = Uint32Array.of(4);
    const buffer = c.getsockopt(fd, SOL_SOCKET, SO_RCVBUF, got, gotLen) === 0 ? got[0]! : 0;
    return new BatchUdpSocket(
      c,
      fd,
      slotBytes,
      { address: nv.getUint32(4, false), port: nv.getUint16(2, false) },
      buffer,
    );
  }

  address(): { address: string; port: number } {
    return { address: u32ToIpv4(this.bound.address), port: this.bound.port };
  }

  /**
   * Read what has arrived, up to `max` datagrams (whole batches: at most max + BATCH − 1),
   * calling `on` for each; returns how many were read. Never blocks. Throws only on a socket
   * error other than "nothing to read" (EAGAIN) or an interrupted call.
   */
  drain(on: OnDatagram, max: number): number {
    if (this.closed) return 0;
    const v = this.view;
    const c = this.c;
    let read = 0;
    while (read < max) {
      const got = c.recvmmsg(this.fd, this.base, BATCH, 0, null);
      if (got < 0) {
        const e = ffi().errno();
        if (e === EINTR) continue;
        if (e === EAGAIN) break;
        throw new WeirError(ErrorCodes.TRANSPORT, `UDP receive failed: ${c.strerror(e)}`);
      }
      for (let i = 0; i < got; i++) {
        const name = this.namesAt + i * SOCKADDR_IN_BYTES;
        // the kernel wrote the sender's length here: set it back for the next call
        v.setUint32(i * MMSG_BYTES + MSG_NAMELEN, SOCKADDR_IN_BYTES, true);
        on(
          this.bytes,
          this.dataAt + i * this.stride,
          v.getUint32(i * MMSG_BYTES + MSG_LEN, true), // at most slotBytes: what the kernel copied
          v.getUint32(name + 4, false),
          v.getUint16(name + 2, false),
        );
      }
      read += got;
      if (got < BATCH) break;
    }
    return read;
  }

  /** Send one datagram now (non-blocking); false when the kernel refused it (a full buffer). */
  send(bytes: Uint8Array, address: string, port: number): boolean {
    if (this.closed) return false;
    const a = ipv4ToU32(address === "localhost" ? "127.0.0.1" : address);
    if (a === null) return false;
    return (
      this.c.sendto(this.fd, bytes, bytes.length, 0, sockaddrIn(a, port), SOCKADDR_IN_BYTES) ===
      bytes.length
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.c.close(this.fd);
    freeNativeMemory(this.mem);
  }
}
