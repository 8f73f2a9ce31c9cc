import { execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { macBackend, macKey } from "./mac.ts";

describe("HMAC-SHA256 backends", () => {
  const hasLibcrypto = (() => {
    try {
      return execFileSync("ldconfig", ["-p"], { encoding: "utf8" }).includes("libcrypto.so.3");
    } catch {
      return false;
    }
  })();
  it.skipIf(!hasLibcrypto)("uses libcrypto where the system has it (the fast path)", () => {
    expect(macBackend()).toBe(process.env.WEIR_MAC === "node" ? "node" : "libcrypto");
  });

  for (const backend of ["libcrypto", "node"] as const) {
    it(`${backend}: equals node:crypto's HMAC for many keys, lengths, offsets`, () => {
      for (const keyLen of [16, 32, 63, 64, 65, 100]) {
        const key = randomBytes(keyLen);
        const k = macKey(key, backend);
        expect(k.backend).toBe(backend);
        for (let t = 0; t < 50; t++) {
          // A message inside a bigger buffer (byteOffset != 0, like a pooled dgram Buffer).
          const pool = randomBytes(400);
          const off = Math.floor(Math.random() * 100);
          const len = Math.floor(Math.random() * 200);
          const msg = pool.subarray(off, off + len + 10);
          const out = new Uint8Array(64);
          const at = t % 2 === 0 ? 0 : 17;
          k.sign(msg, len, out, at);
          const want = createHmac("sha256", key).update(msg.subarray(0, len)).digest();
          expect(Buffer.from(out.subarray(at, at + 32)).equals(want)).toBe(true);
        }
      }
    });
  }
});
