// Logging with pino: readable lines on a terminal (pino-pretty), JSON lines otherwise.
import pino, { type Logger } from "pino";

export function createLogger(
  level: string,
  opts: { json?: boolean; destination?: number } = {},
): Logger {
  const fd = opts.destination ?? 2;
  const pretty = !opts.json && Boolean(fd === 1 ? process.stdout.isTTY : process.stderr.isTTY);
  if (pretty) {
    return pino({
      level,
      transport: {
        target: "pino-pretty",
        options: {
          destination: fd,
          colorize: true,
          translateTime: "HH:MM:ss.l",
          ignore: "pid,hostname",
          singleLine: true,
        },
      },
    });
  }
  return pino({ level, base: undefined }, pino.destination({ dest: fd, sync: true }));
}
