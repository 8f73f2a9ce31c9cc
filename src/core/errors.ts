// The error catalogue: every error weir raises on purpose has a code from here.

export const ErrorCodes = {
  CONFIG_INVALID: "WEIR_CONFIG_INVALID",
  CONFIG_NOT_FOUND: "WEIR_CONFIG_NOT_FOUND",
  CONFIG_PARSE: "WEIR_CONFIG_PARSE",
  CGROUP_GONE: "WEIR_CGROUP_GONE",
  CGROUP_NOT_WRITABLE: "WEIR_CGROUP_NOT_WRITABLE",
  CGROUP_WRITE_FAILED: "WEIR_CGROUP_WRITE_FAILED",
  /** An actuator's target (a cgroup, a VM, a pod) no longer exists: terminal for that partition until reopened. */
  TARGET_GONE: "WEIR_TARGET_GONE",
  /** An actuator's target refuses writes (permissions, a read-only mount): terminal. */
  TARGET_NOT_WRITABLE: "WEIR_TARGET_NOT_WRITABLE",
  /** An actuator could not apply a value now (the kernel or API refused it): retried next cycle. */
  APPLY_FAILED: "WEIR_APPLY_FAILED",
  /** A directive or snapshot an actuator refuses before writing anything (NaN cap, another partition's snapshot). */
  DIRECTIVE_INVALID: "WEIR_DIRECTIVE_INVALID",
  COUNTER_UNREADABLE: "WEIR_COUNTER_UNREADABLE",
  COUNTER_MALFORMED: "WEIR_COUNTER_MALFORMED",
  INTERFACE_GONE: "WEIR_INTERFACE_GONE",
  PROCESS_GONE: "WEIR_PROCESS_GONE",
  REPORT_REJECTED: "WEIR_REPORT_REJECTED",
  NOT_ROOT: "WEIR_NOT_ROOT",
  TESTBED: "WEIR_TESTBED",
  TRANSPORT: "WEIR_TRANSPORT",
  AGENT: "WEIR_AGENT",
  /** The kernel refused a bpf() call: no CAP_BPF/root, no cgroup BPF, no bpffs (src/bpf). */
  BPF_UNAVAILABLE: "WEIR_BPF_UNAVAILABLE",
  /** The verifier rejected a program; the message carries its log. */
  BPF_REJECTED: "WEIR_BPF_REJECTED",
  /** A cycle threw something no partition's fault explains (policy, reports, a hook). */
  CYCLE_FAILED: "WEIR_CYCLE_FAILED",
  /** Too many cycles in a row failed: the manager stops (after restoring, as on SIGTERM). */
  CYCLE_CRASH_LOOP: "WEIR_CYCLE_CRASH_LOOP",
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class WeirError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  constructor(
    code: ErrorCode,
    message: string,
    opts: { retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "WeirError";
    this.code = code;
    this.retryable = opts.retryable ?? false;
  }
  toInfo(): { code: string; message: string; retryable: boolean } {
    return { code: this.code, message: this.message, retryable: this.retryable };
  }
}

export const isWeirError = (e: unknown): e is WeirError => e instanceof WeirError;
