// Bit-for-bit equality of typed arrays' bytes: what lets a cycle's output share a buffer with
// the last cycle's when every value is the same (NaN payloads and -0 included, which `===` on
// the numbers would not tell apart). Pure.

/** Whether `a` and `b` hold the same bytes (views of any type, compared as bytes). */
export function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  const len = a.byteLength;
  if (len !== b.byteLength) return false;
  if (a.buffer === b.buffer && a.byteOffset === b.byteOffset) return true;
  // whole 32-bit words where both views are aligned to 4, then the tail byte by byte
  let i = 0;
  if ((a.byteOffset & 3) === 0 && (b.byteOffset & 3) === 0) {
    const words = len >>> 2;
    const x = new Int32Array(a.buffer, a.byteOffset, words);
    const y = new Int32Array(b.buffer, b.byteOffset, words);
    for (let w = 0; w < words; w++) if (x[w] !== y[w]) return false;
    i = words << 2;
  }
  if (i === len) return true;
  const x = new Uint8Array(a.buffer, a.byteOffset, len);
  const y = new Uint8Array(b.buffer, b.byteOffset, len);
  for (; i < len; i++) if (x[i] !== y[i]) return false;
  return true;
}
