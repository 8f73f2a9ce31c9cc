// Wire format of the closed-loop TCP mode (little-endian): a stream of frames, each
//
//   0 u16 magic 0x5257 ("WR" on the wire) | 2 u16 body length | 4.. body
//
// A request's body is the UDP request (protocol.ts: u32 run id, u32 sequence, f64 client
// send time, padding; >= 16 bytes); a reply's body is the UDP reply (32 bytes). One reply
// per request, in order. A frame with the wrong magic, a body shorter than the request
// header, or a body longer than the reader's limit is bad input: the reader stops and
// the connection is closed (there is no way to find the next frame boundary).
import { REPLY_BYTES, REQUEST_HEADER_BYTES } from "./protocol.ts";

export const FRAME_MAGIC = 0x5257;
export const FRAME_HEADER_BYTES = 4;
/** Largest body the u16 length can carry. */
export const MAX_FRAME_BODY_BYTES = 0xffff;
/** The server's default limit on a request body. */
export const DEFAULT_MAX_REQUEST_BYTES = 4096;

/** One frame: header + body (the body copied from `body`). */
export function encodeFrame(body: Buffer): Buffer {
  if (body.length > MAX_FRAME_BODY_BYTES) {
    throw new RangeError(
      `frame body must be at most ${MAX_FRAME_BODY_BYTES} bytes: current value is ${body.length}`,
    );
  }
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  out.writeUInt16LE(FRAME_MAGIC, 0);
  out.writeUInt16LE(body.length, 2);
  body.copy(out, FRAME_HEADER_BYTES);
  return out;
}

/** A request frame of `bodyBytes` (>= 16) carrying run id, sequence and send time; padding is zero. */
export function encodeRequestFrame(
  runId: number,
  seq: number,
  sendMs: number,
  bodyBytes: number,
): Buffer {
  const out = Buffer.alloc(FRAME_HEADER_BYTES + bodyBytes);
  out.writeUInt16LE(FRAME_MAGIC, 0);
  out.writeUInt16LE(bodyBytes, 2);
  out.writeUInt32LE(runId >>> 0, 4);
  out.writeUInt32LE(seq >>> 0, 8);
  out.writeDoubleLE(sendMs, 12);
  return out;
}

export type FrameError =
  | { reason: "bad-magic"; value: number }
  | { reason: "too-short"; value: number }
  | { reason: "too-long"; value: number };

export const describeFrameError = (e: FrameError, minBytes: number, maxBytes: number): string =>
  e.reason === "bad-magic"
    ? `frame magic must be 0x${FRAME_MAGIC.toString(16)}: current value is 0x${e.value.toString(16)}`
    : e.reason === "too-short"
      ? `frame body must be at least ${minBytes} bytes: current value is ${e.value}`
      : `frame body must be at most ${maxBytes} bytes: current value is ${e.value}`;

/**
 * Splits a byte stream into frame bodies. `push` takes whatever a socket delivered (any
 * split: half a header, several frames at once) and returns the complete bodies it now
 * holds; after bad input it returns the error and stays failed.
 */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);
  private failed: FrameError | null = null;

  constructor(
    readonly minBodyBytes: number,
    readonly maxBodyBytes: number,
  ) {
    if (
      !(minBodyBytes >= 0 && maxBodyBytes >= minBodyBytes && maxBodyBytes <= MAX_FRAME_BODY_BYTES)
    )
      throw new RangeError(
        `frame limits must satisfy 0 <= min <= max <= ${MAX_FRAME_BODY_BYTES}: current values are ${minBodyBytes}, ${maxBodyBytes}`,
      );
  }

  /** Bytes received but not yet part of a complete frame. */
  get buffered(): number {
    return this.pending.length;
  }

  get error(): FrameError | null {
    return this.failed;
  }

  push(chunk: Buffer): { frames: Buffer[]; error: FrameError | null } {
    const frames: Buffer[] = [];
    if (this.failed) return { frames, error: this.failed };
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let off = 0;
    while (buf.length - off >= FRAME_HEADER_BYTES) {
      const magic = buf.readUInt16LE(off);
      const len = buf.readUInt16LE(off + 2);
      if (magic !== FRAME_MAGIC) this.failed = { reason: "bad-magic", value: magic };
      else if (len < this.minBodyBytes) this.failed = { reason: "too-short", value: len };
      else if (len > this.maxBodyBytes) this.failed = { reason: "too-long", value: len };
      if (this.failed) {
        this.pending = Buffer.alloc(0);
        return { frames, error: this.failed };
      }
      if (buf.length - off < FRAME_HEADER_BYTES + len) break;
      frames.push(buf.subarray(off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + len));
      off += FRAME_HEADER_BYTES + len;
    }
    // Keep the tail only (a copy, so the socket's chunk is not pinned by a small remainder).
    buf = buf.subarray(off);
    this.pending = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
    return { frames, error: null };
  }
}

/** Reader for the server side: request bodies within [16, maxBodyBytes]. */
export const requestReader = (maxBodyBytes = DEFAULT_MAX_REQUEST_BYTES): FrameReader =>
  new FrameReader(REQUEST_HEADER_BYTES, maxBodyBytes);

/** Reader for the client side: reply bodies of exactly 32 bytes. */
export const replyReader = (): FrameReader => new FrameReader(REPLY_BYTES, REPLY_BYTES);
