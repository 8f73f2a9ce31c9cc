import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isWeirError } from "../core/errors.ts";
import { makePinDir } from "./cgroup-counters.ts";

describe("makePinDir", () => {
  const made: string[] = [];
  afterEach(() => {
    for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it("makes each missing level 0700, and takes an existing one as it is", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "weir-pindir-"));
    made.push(root);
    const dir = path.join(root, "weir", "web");
    makePinDir("web", dir);
    expect(fs.statSync(path.join(root, "weir")).mode & 0o777).toBe(0o700);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    makePinDir("web", dir);
    expect(fs.statSync(dir).isDirectory()).toBe(true);
  });

  it("where mkdir answers ENOENT under a directory that exists (no bpffs on /sys/fs/bpf), fails at once naming the mount", () => {
    // procfs answers mkdir with ENOENT, as sysfs's bare /sys/fs/bpf does; Node's recursive
    // mkdir retried that forever, and weir hung at start with pin: true
    let msg = "";
    try {
      makePinDir("web", "/proc/weir/web"); // as /sys/fs/bpf/weir/web
    } catch (e) {
      if (isWeirError(e)) msg = `${e.code}: ${e.message}`;
    }
    expect(msg).toBe(
      "WEIR_BPF_UNAVAILABLE: partition web: making its pin directory /proc/weir failed (ENOENT): mount the bpf filesystem at /proc (mount -t bpf bpf /proc), or set pin: false",
    );
  });
});
