// What the cgroup hooks count of the e2e tests' loopback traffic, in bytes, and the kernel's
// own view of a TCP socket (ss -ti) to check it against; promtool's verdict on a scrape.
import { execFileSync } from "node:child_process";
import fs from "node:fs";

/** A UDP datagram of 64 bytes as the cgroup hooks see it: IPv4 header 20 + UDP header 8 + 64. */
export const DATAGRAM_BYTES = 20 + 8 + 64;

/**
 * The bytes of `segs` TCP segments carrying `payload` bytes in all, as the cgroup hooks see
 * them (IP packet length): IPv4 header 20 + TCP header 20, + 12 of timestamp option on every
 * segment when net.ipv4.tcp_timestamps is on; the one SYN (or SYN-ACK) among them carries
 * MSS, SACK-permitted, timestamps and window-scale options: 20 bytes of options with
 * timestamps (8 more than the others), 12 without.
 */
export function tcpBytes(segs: number, payload: number): number {
  const ts = fs.readFileSync("/proc/sys/net/ipv4/tcp_timestamps", "utf8").trim() !== "0";
  const header = 20 + 20 + (ts ? 12 : 0);
  return segs * header + (ts ? 8 : 12) + payload;
}

/**
 * segs_in / segs_out and payload bytes_received / bytes_sent of the established TCP socket
 * with this local port (ss -ti: tcp_info).
 */
export function tcpSegments(localPort: number): {
  segsIn: number;
  segsOut: number;
  bytesIn: number;
  bytesOut: number;
} {
  const text = execFileSync("ss", ["-tinH", "state", "established", "sport", `= :${localPort}`], {
    encoding: "utf8",
  });
  const field = (name: string, absentIsZero = false) => {
    const m = new RegExp(`\\b${name}:(\\d+)`).exec(text);
    if (m) return Number(m[1]);
    if (absentIsZero) return 0;
    throw new Error(`ss shows no ${name} for port ${localPort}: ${text}`);
  };
  return {
    segsIn: field("segs_in"),
    segsOut: field("segs_out"),
    // tcp_info omits a zero bytes_sent/bytes_received
    bytesIn: field("bytes_received", true),
    bytesOut: field("bytes_sent", true),
  };
}

/** promtool's verdict on a scrape of /metrics: "" when it accepts it. */
export function promtool(text: string): string {
  try {
    return execFileSync("/usr/bin/promtool", ["check", "metrics"], {
      input: text,
      encoding: "utf8",
      stdio: ["pipe", "pipe", "pipe"],
    });
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; message: string };
    return `${x.stdout ?? ""}${x.stderr ?? ""}` || x.message;
  }
}
