/** One Server-Sent Event: what its `id:`, `event:` and `data:` lines said. */
export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * Parses an event stream (the WHATWG EventSource rules) incrementally: the
 * text arrives in chunks cut anywhere, even between a CR and its LF, and each
 * push returns the events its chunk completed. Comments (heartbeats) and
 * `retry:` yield nothing.
 */
export class SseParser {
  #pending = "";
  /** The chunk before ended with CR: an LF at the start of this one belongs to it. */
  #afterCr = false;
  #id: string | undefined = undefined;
  #event = "";
  #data: string[] = [];

  push(chunk: string): SseEvent[] {
    const events: SseEvent[] = [];
    let text = chunk;
    if (this.#afterCr && text.startsWith("\n")) text = text.slice(1);
    this.#afterCr = false;
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = this.#pending + text.slice(start, i);
      this.#pending = "";
      if (c === 13) {
        if (i + 1 === text.length) this.#afterCr = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
      const event = this.#line(line);
      if (event) events.push(event);
    }
    this.#pending += text.slice(start);
    return events;
  }

  #line(line: string): SseEvent | undefined {
    if (line === "") return this.#dispatch();
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.#data.push(value);
    else if (field === "event") this.#event = value;
    else if (field === "id" && !value.includes("\0")) this.#id = value;
    return undefined;
  }

  #dispatch(): SseEvent | undefined {
    const data = this.#data;
    const event = this.#event || "message";
    this.#data = [];
    this.#event = "";
    // The id stays the stream's last event id, as EventSource keeps it.
    return data.length === 0 ? undefined : { id: this.#id, event, data: data.join("\n") };
  }
}
