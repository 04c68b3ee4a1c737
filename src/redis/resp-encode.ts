/** One argument of a command: sent as a bulk string (a number as its decimal form). */
export type RedisArg = string | Buffer | number;

/**
 * A command as Redis reads it: an array of bulk strings. All-text commands
 * become one string (cheapest to batch into one write); a command with a
 * Buffer argument becomes one Buffer, its bytes untouched.
 */
export function encodeCommand(args: readonly RedisArg[]): string | Buffer {
  let text = `*${args.length}\r\n`;
  let binary: Buffer[] | undefined;
  for (const arg of args) {
    if (Buffer.isBuffer(arg)) {
      binary ??= [];
      binary.push(Buffer.from(`${text}$${arg.length}\r\n`), arg);
      text = "\r\n";
      continue;
    }
    const value = typeof arg === "number" ? String(arg) : arg;
    text += `$${Buffer.byteLength(value)}\r\n${value}\r\n`;
  }
  if (binary === undefined) return text;
  binary.push(Buffer.from(text));
  return Buffer.concat(binary);
}
