// Option parsers shared by `weir` commands. A bad value throws a WeirError, which
// src/cli/main.ts prints as one line (field, rule, value) and exits 2.
import { ErrorCodes, WeirError } from "../core/errors.ts";

/** Commander parser for `--<name> <n>`: a finite number > 0. */
export const positive = (name: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n <= 0)
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `--${name} must be a positive number: got "${v}"`,
    );
  return n;
};

/** Commander parser for `--<name> <n>`: a port, an integer from 0 to 65535. */
export const port = (name: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < 0 || n > 65_535)
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `--${name} must be a port, an integer from 0 to 65535: got "${v}"`,
    );
  return n;
};
