// Wire format between the load generator and the packet server (UDP, little-endian).
//
// request (>= 16 bytes):  0 u32 run id | 4 u32 sequence | 8 f64 client send time (ms, the
//                          client's own clock; opaque to the server) | padding
// reply   (32 bytes):     0..16 the request's first 16 bytes, echoed | 16 f64 server send
//                          time (ms since the epoch) | 24 first 8 bytes of the work's digest
export const REQUEST_HEADER_BYTES = 16;
export const REPLY_BYTES = 32;
export const DEFAULT_REQUEST_BYTES = 64;

export function encodeRequest(buf: Buffer, runId: number, seq: number, sendMs: number): Buffer {
  buf.writeUInt32LE(runId >>> 0, 0);
  buf.writeUInt32LE(seq >>> 0, 4);
  buf.writeDoubleLE(sendMs, 8);
  return buf;
}

export interface Reply {
  runId: number;
  seq: number;
  clientSendMs: number;
  serverSendMs: number;
}

export function decodeReply(buf: Buffer): Reply | null {
  if (buf.length < REPLY_BYTES) return null;
  return {
    runId: buf.readUInt32LE(0),
    seq: buf.readUInt32LE(4),
    clientSendMs: buf.readDoubleLE(8),
    serverSendMs: buf.readDoubleLE(16),
  };
}
