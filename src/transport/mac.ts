// HMAC-SHA256 for the wire formats, with the key's inner and outer SHA-256 states computed
// once per key. Two backends give identical tags:
// - "libcrypto": the system's OpenSSL libcrypto.so.3 through koffi (SHA256_Init/Update/Final
//   on copied midstates): about 1.5 µs a tag on this machine;
// - "node": node:crypto createHmac, about 6 µs a tag here (OpenSSL 3's per-call setup).
// libcrypto is used when it loads; WEIR_MAC=node forces node:crypto.
import { createHash, createHmac, createSecretKey, type KeyObject } from "node:crypto";
import { ffi } from "./ffi.ts";

export type MacBackendName = "libcrypto" | "node";

export interface MacKey {
  readonly backend: MacBackendName;
  /** Write HMAC-SHA256(key, bytes[0 : len]) into out[at : at + 32]. */
  sign(bytes: Uint8Array, len: number, out: Uint8Array, at: number): void;
}

/** sizeof(SHA256_CTX) is 112 on every OpenSSL 1.1/3 build; 128 leaves room. */
const CTX_BYTES = 128;

interface Libcrypto {
  init: (ctx: Uint8Array) => number;
  update: (ctx: Uint8Array, data: Uint8Array, len: number) => number;
  final: (md: Uint8Array, ctx: Uint8Array) => number;
}

let libcrypto: Libcrypto | null | undefined;

function loadLibcrypto(): Libcrypto | null {
  if (libcrypto !== undefined) return libcrypto;
  try {
    const lib = ffi().load("libcrypto.so.3");
    libcrypto = {
      init: lib.func("int SHA256_Init(void *c)"),
      update: lib.func("int SHA256_Update(void *c, const uint8_t *data, size_t len)"),
      final: lib.func("int SHA256_Final(uint8_t *md, void *c)"),
    };
    // Self-test against node:crypto before trusting it.
    const k = new LibcryptoMac(libcrypto, new Uint8Array(32).fill(7));
    const msg = new Uint8Array(100).fill(9);
    const a = new Uint8Array(32);
    k.sign(msg, 100, a, 0);
    const b = createHmac("sha256", new Uint8Array(32).fill(7)).update(msg).digest();
    if (!Buffer.from(a).equals(b)) libcrypto = null;
  } catch {
    libcrypto = null;
  }
  return libcrypto;
}

// Scratch shared by every libcrypto key (JavaScript runs one sign at a time).
const work = Buffer.alloc(CTX_BYTES);
const inner = Buffer.alloc(32);

class LibcryptoMac implements MacKey {
  readonly backend = "libcrypto" as const;
  private readonly ictx = Buffer.alloc(CTX_BYTES);
  private readonly octx = Buffer.alloc(CTX_BYTES);

  constructor(
    private readonly c: Libcrypto,
    key: Uint8Array,
  ) {
    const k = key.length > 64 ? createHash("sha256").update(key).digest() : key;
    const ipad = Buffer.alloc(64, 0x36);
    const opad = Buffer.alloc(64, 0x5c);
    for (let i = 0; i < k.length; i++) {
      ipad[i]! ^= k[i]!;
      opad[i]! ^= k[i]!;
    }
    c.init(this.ictx);
    c.update(this.ictx, ipad, 64);
    c.init(this.octx);
    c.update(this.octx, opad, 64);
  }

  sign(bytes: Uint8Array, len: number, out: Uint8Array, at: number): void {
    const c = this.c;
    // TypedArray set, not Buffer.copy: the latter's argument handling costs more than 112 bytes
    work.set(this.ictx);
    c.update(work, bytes, len);
    c.final(inner, work);
    work.set(this.octx);
    c.update(work, inner, 32);
    if (at === 0 && out.length >= 32) c.final(out, work);
    else {
      c.final(inner, work);
      out.set(inner, at);
    }
  }
}

class NodeMac implements MacKey {
  readonly backend = "node" as const;
  private readonly key: KeyObject;
  constructor(key: Uint8Array) {
    this.key = createSecretKey(key);
  }
  sign(bytes: Uint8Array, len: number, out: Uint8Array, at: number): void {
    out.set(createHmac("sha256", this.key).update(bytes.subarray(0, len)).digest(), at);
  }
}

/** The backend new keys get (libcrypto when it loads, unless WEIR_MAC=node). */
export function macBackend(): MacBackendName {
  if (process.env.WEIR_MAC === "node") return "node";
  return loadLibcrypto() ? "libcrypto" : "node";
}

export function macKey(key: Uint8Array, backend: MacBackendName = macBackend()): MacKey {
  if (backend === "libcrypto") {
    const c = loadLibcrypto();
    if (c) return new LibcryptoMac(c, key);
  }
  return new NodeMac(key);
}

export const isMacKey = (k: unknown): k is MacKey =>
  typeof k === "object" && k !== null && typeof (k as MacKey).sign === "function";
