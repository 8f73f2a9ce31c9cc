import { describe, expect, it } from "vitest";
import { decodeReply, REPLY_BYTES } from "./protocol.ts";
import {
  DEFAULT_MAX_REQUEST_BYTES,
  describeFrameError,
  encodeFrame,
  encodeRequestFrame,
  FRAME_HEADER_BYTES,
  FrameReader,
  replyReader,
  requestReader,
} from "./tcp-protocol.ts";

describe("frames", () => {
  it("a request frame is magic 'WR', u16 length, then the UDP request header and zero padding", () => {
    const f = encodeRequestFrame(0xdeadbeef, 7, 12.5, 20);
    expect(f.length).toBe(FRAME_HEADER_BYTES + 20);
    expect(f.subarray(0, 4)).toEqual(Buffer.from([0x57, 0x52, 20, 0]));
    expect(f.readUInt32LE(4)).toBe(0xdeadbeef);
    expect(f.readUInt32LE(8)).toBe(7);
    expect(f.readDoubleLE(12)).toBe(12.5);
    expect(f.subarray(20)).toEqual(Buffer.alloc(4));
  });

  it("encodeFrame refuses a body the u16 length cannot carry", () => {
    expect(() => encodeFrame(Buffer.alloc(70_000))).toThrow(
      /at most 65535 bytes: current value is 70000/,
    );
  });
});

describe("FrameReader", () => {
  const three = Buffer.concat([
    encodeRequestFrame(1, 1, 1, 16),
    encodeRequestFrame(1, 2, 2, 64),
    encodeRequestFrame(1, 3, 3, 16),
  ]);
  const seqs = (bodies: Buffer[]) => bodies.map((b) => b.readUInt32LE(4));

  it("returns every frame whatever the split: all at once, byte by byte, across headers", () => {
    expect(seqs(requestReader().push(three).frames)).toEqual([1, 2, 3]);
    const r = requestReader();
    const got: Buffer[] = [];
    for (let i = 0; i < three.length; i++) got.push(...r.push(three.subarray(i, i + 1)).frames);
    expect(seqs(got)).toEqual([1, 2, 3]);
    expect(r.buffered).toBe(0);
    // split inside the second header
    const r2 = requestReader();
    const a = r2.push(three.subarray(0, 4 + 16 + 2));
    expect(seqs(a.frames)).toEqual([1]);
    expect(r2.buffered).toBe(2);
    expect(seqs(r2.push(three.subarray(22)).frames)).toEqual([2, 3]);
  });

  it("bodies keep their bytes after the chunk they came in is reused", () => {
    const chunk = Buffer.from(encodeRequestFrame(5, 9, 0, 16));
    const r = requestReader();
    r.push(chunk.subarray(0, 10));
    const { frames } = r.push(chunk.subarray(10));
    chunk.fill(0);
    expect(frames[0]!.readUInt32LE(4)).toBe(9);
  });

  it("a wrong magic, a short body or an oversized body fails the stream for good", () => {
    const bad = requestReader().push(Buffer.from("GET / HTTP/1.1\r\n"));
    expect(bad.error).toEqual({ reason: "bad-magic", value: 0x4547 });
    expect(requestReader().push(encodeFrame(Buffer.alloc(15))).error).toEqual({
      reason: "too-short",
      value: 15,
    });
    const r = requestReader(100);
    const out = r.push(
      Buffer.concat([encodeRequestFrame(1, 1, 0, 16), encodeFrame(Buffer.alloc(101))]),
    );
    // the good frame before the bad one is still delivered
    expect(seqs(out.frames)).toEqual([1]);
    expect(out.error).toEqual({ reason: "too-long", value: 101 });
    expect(r.push(encodeRequestFrame(1, 2, 0, 16))).toEqual({ frames: [], error: out.error });
    // the oversized header alone is enough: no need to wait for its body
    expect(requestReader().push(Buffer.from([0x57, 0x52, 0xff, 0xff])).error).toEqual({
      reason: "too-long",
      value: 0xffff,
    });
    expect(DEFAULT_MAX_REQUEST_BYTES).toBeLessThan(0xffff);
  });

  it("the reply reader takes exactly 32-byte bodies; errors read as field, rule, value", () => {
    const reply = Buffer.alloc(REPLY_BYTES);
    reply.writeUInt32LE(3, 0);
    reply.writeUInt32LE(4, 4);
    const { frames, error } = replyReader().push(encodeFrame(reply));
    expect(error).toBeNull();
    expect(decodeReply(frames[0]!)).toMatchObject({ runId: 3, seq: 4 });
    expect(replyReader().push(encodeFrame(Buffer.alloc(33))).error?.reason).toBe("too-long");
    expect(describeFrameError({ reason: "too-long", value: 33 }, 32, 32)).toBe(
      "frame body must be at most 32 bytes: current value is 33",
    );
    expect(describeFrameError({ reason: "bad-magic", value: 0x4547 }, 16, 64)).toBe(
      "frame magic must be 0x5257: current value is 0x4547",
    );
    expect(() => new FrameReader(10, 5)).toThrow(/current values are 10, 5/);
  });
});
