// A counter file opened once and re-read at offset 0 (pread) on every sample.
// This is the "read" half of read-in-one-function, parse-in-another: it returns the
// file's text and knows nothing about what the text means.
import fs from "node:fs";
import { type HeldFdBudget, heldFds } from "../cgroup/held-fds.ts";
import { type ErrorCode, ErrorCodes, WeirError } from "../core/errors.ts";

/** Decides what a failure to open or read `path` means for its owner (cgroup gone, interface gone...). */
export type FailureClassifier = (path: string, err: NodeJS.ErrnoException) => WeirError;

export interface HeldFileOptions {
  /** Initial buffer size in bytes; grows (doubling) when a read fills it. */
  sizeHint?: number;
  /**
   * Reopen the path when the held descriptor went stale (sysfs/cgroupfs answer ENODEV once
   * the object behind it is removed, even if one with the same name is created again).
   * Off for /proc/<pid> files: a reopened pid could be another process.
   */
  reopenOnStale?: boolean;
  /** Maps an errno to the owner's WeirError. Default: COUNTER_UNREADABLE (retryable). */
  classify?: FailureClassifier;
  /** The budget of held descriptors this file takes one from (default: the process's, heldFds). */
  fdBudget?: HeldFdBudget;
}

/** errno codes that mean "the kernel object behind this fd is gone". */
const STALE_CODES = new Set(["ENODEV", "ENOENT", "ESTALE", "ESRCH"]);

export const isStaleError = (err: NodeJS.ErrnoException): boolean =>
  err.code !== undefined && STALE_CODES.has(err.code);

/**
 * A classifier for the files of one kernel object (`what`: "cgroup weir/web"): a stale file
 * means the object is gone (`code`, terminal unless `retryable`); anything else is a retryable
 * COUNTER_UNREADABLE.
 */
export const goneClassifier =
  (code: ErrorCode, what: string, retryable: boolean): FailureClassifier =>
  (file, err) =>
    isStaleError(err)
      ? new WeirError(code, `${what} is gone (${file}: ${err.code})`, { retryable, cause: err })
      : new WeirError(ErrorCodes.COUNTER_UNREADABLE, `cannot read ${file}: ${err.code}`, {
          retryable: true,
          cause: err,
        });

export const defaultClassify: FailureClassifier = (path, err) =>
  new WeirError(ErrorCodes.COUNTER_UNREADABLE, `cannot read ${path}: ${err.code ?? err.message}`, {
    retryable: true,
    cause: err,
  });

const MAX_BYTES = 1 << 22;

export class HeldFile {
  readonly path: string;
  private fd: number | null = null;
  private buf: Buffer;
  private readonly reopenOnStale: boolean;
  private readonly classify: FailureClassifier;
  /** How many times the descriptor was reopened after going stale (for tests and metrics). */
  reopens = 0;
  /**
   * Opened for each read and closed again, because the process's budget of held descriptors
   * (heldFds) was spent when this file was opened.
   */
  readonly onDemand: boolean;
  private closed = false;
  private readonly budget: HeldFdBudget;

  /** Opens `path` now; throws the classified WeirError when it cannot. */
  constructor(path: string, opts: HeldFileOptions = {}) {
    this.path = path;
    this.buf = Buffer.allocUnsafe(opts.sizeHint ?? 256);
    this.reopenOnStale = opts.reopenOnStale ?? true;
    this.classify = opts.classify ?? defaultClassify;
    this.budget = opts.fdBudget ?? heldFds;
    this.onDemand = !this.budget.take();
    if (this.onDemand)
      this.readOnDemand(); // throws now, as a held open would, when it cannot
    else
      try {
        this.fd = this.open();
      } catch (err) {
        this.budget.give();
        throw err;
      }
  }

  /** The file's whole current text (latin1: kernel counter files are ASCII). */
  read(): string {
    if (this.onDemand) return this.readOnDemand();
    if (this.fd === null) {
      if (!this.reopenOnStale) throw this.classify(this.path, closedError(this.path));
      this.fd = this.open();
      this.reopens++;
    }
    try {
      return this.readAll(this.fd);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (!isStaleError(err)) throw this.classify(this.path, err);
      this.closeFd();
      if (!this.reopenOnStale) throw this.classify(this.path, err);
      // One reopen attempt now; if the path is gone too, the classifier says what that means.
      this.fd = this.open();
      this.reopens++;
      try {
        return this.readAll(this.fd);
      } catch (e2) {
        this.closeFd();
        throw this.classify(this.path, e2 as NodeJS.ErrnoException);
      }
    }
  }

  close(): void {
    this.closeFd();
    if (!this.onDemand && !this.closed) this.budget.give();
    this.closed = true;
  }

  get isOpen(): boolean {
    return this.fd !== null;
  }

  private readOnDemand(): string {
    const fd = this.open();
    try {
      return this.readAll(fd);
    } catch (e) {
      if (e instanceof WeirError) throw e;
      throw this.classify(this.path, e as NodeJS.ErrnoException);
    } finally {
      fs.closeSync(fd);
    }
  }

  private open(): number {
    try {
      return fs.openSync(this.path, "r");
    } catch (e) {
      throw this.classify(this.path, e as NodeJS.ErrnoException);
    }
  }

  private readAll(fd: number): string {
    for (;;) {
      const n = fs.readSync(fd, this.buf, 0, this.buf.length, 0);
      if (n < this.buf.length) return this.buf.toString("latin1", 0, n);
      if (this.buf.length >= MAX_BYTES)
        throw new WeirError(
          ErrorCodes.COUNTER_MALFORMED,
          `${this.path}: larger than ${MAX_BYTES} bytes, not a counter file`,
        );
      this.buf = Buffer.allocUnsafe(this.buf.length * 2);
    }
  }

  private closeFd(): void {
    if (this.fd === null) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      // closing a descriptor whose object vanished can fail; it is released either way
    }
    this.fd = null;
  }
}

function closedError(path: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(
    `${path}: descriptor closed after its object went away`,
  );
  err.code = "ESRCH";
  return err;
}

/** Open, read, close: the slow path (for one-off reads and for comparison in bench/sample.ts). */
export function readOnce(path: string, classify: FailureClassifier = defaultClassify): string {
  try {
    return fs.readFileSync(path, "latin1");
  } catch (e) {
    throw classify(path, e as NodeJS.ErrnoException);
  }
}
