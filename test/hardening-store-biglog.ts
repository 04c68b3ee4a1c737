import { closeSync, openSync, writeSync } from "node:fs";

/** A message of the largest size --max-message allows by default (2000 characters). */
export const BIG_TEXT = "x".repeat(1990) + "0123456789";

const FIRST_ID = 1_700_000_000_000_000;
const LINES_PER_BLOCK = 500;

export interface BigLog {
  /** The id of the last message written to each room. */
  lastIds: Map<string, number>;
  messages: number;
  bytes: number;
}

/**
 * Writes a log in the format of src/store/records.ts as a long-running server
 * appends it: a head, a session (alice) in `rooms`, then max-size messages to
 * those rooms in turn until `bytes` are written. One block of lines is built
 * once and written again and again with only its ids changed in place (ids
 * have a fixed width), so 200 MiB take about as long as the disk does.
 */
export function writeBigLog(path: string, bytes: number, rooms: readonly string[]): BigLog {
  const fd = openSync(path, "w");
  const lastIds = new Map<string, number>();
  let written = 0;
  const put = (data: Buffer): void => {
    for (let offset = 0; offset < data.length; ) offset += writeSync(fd, data, offset, data.length - offset);
    written += data.length;
  };
  try {
    const head = [`{"k":"head","v":1,"last":${FIRST_ID}}`, `{"k":"sess","n":"alice","s":${FIRST_ID}}`];
    for (const room of rooms) head.push(`{"k":"join","n":"alice","r":"${room}"}`);
    put(Buffer.from(head.join("\n") + "\n"));
    // Line i of a block goes to rooms[i % rooms.length], whatever the block.
    const lines = Array.from({ length: LINES_PER_BLOCK }, (_, i) => {
      const room = rooms[i % rooms.length]!;
      return `{"k":"msg","m":{"id":${FIRST_ID},"type":"message","room":"${room}","from":"alice","text":"${BIG_TEXT}","ts":${FIRST_ID / 1000}}}`;
    });
    const block = Buffer.from(lines.join("\n") + "\n");
    const idOffsets: number[] = [];
    for (let at = block.indexOf('"id":'); at !== -1; at = block.indexOf('"id":', at + 1)) idOffsets.push(at + 5);
    let id = FIRST_ID;
    let messages = 0;
    while (written < bytes) {
      for (let i = 0; i < LINES_PER_BLOCK; i++) {
        block.write(String(++id), idOffsets[i]!, "latin1");
        lastIds.set(rooms[i % rooms.length]!, id);
      }
      put(block);
      messages += LINES_PER_BLOCK;
    }
    return { lastIds, messages, bytes: written };
  } finally {
    closeSync(fd);
  }
}
