#!/usr/bin/env node
import { type ChatOptions } from "./config.js";
import { createChatServer } from "./server.js";
import { parseCli, usage } from "./cli-options.js";

/** How long shutdown may take before the process exits anyway (the spec allows 5 s). */
const SHUTDOWN_DEADLINE_MS = 4500;

async function main(): Promise<void> {
  let options: ChatOptions | "help";
  try {
    options = parseCli(process.argv.slice(2), process.env);
  } catch (error) {
    process.stderr.write(`pollchat: ${(error as Error).message}\n\n${usage()}`);
    process.exit(2);
  }
  if (options === "help") {
    process.stdout.write(usage());
    return;
  }
  const chat = createChatServer({
    ...options,
    // This process cannot go on with the shared store (its limits differ from a new epoch's): exit; a supervisor restarts it.
    onStoreLost: (reason) => {
      process.stderr.write(`pollchat: ${reason}\n`);
      process.exit(1);
    },
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    chat.ops.log.info("shutdown", { signal });
    setTimeout(() => process.exit(0), SHUTDOWN_DEADLINE_MS).unref();
    chat.close().then(
      () => process.exit(0),
      (error: unknown) => {
        chat.ops.log.error("error", { during: "shutdown", error: (error as Error).stack ?? String(error) });
        process.exit(1);
      },
    );
  };
  // Before the listening line: whoever reads it may signal at once, and until a
  // handler is installed the kernel's default action kills the process.
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  const { url, host, tcpPort } = await chat.listen();
  process.stdout.write(`pollchat listening on ${url}\n`);
  if (tcpPort !== undefined) process.stdout.write(`pollchat tcp gateway on ${host}:${tcpPort}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`pollchat: ${(error as Error).message}\n`);
  process.exit(1);
});
