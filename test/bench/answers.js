// Reading poll answers in the generator, in both of pollchat's forms: the
// seed's text lines (spec §3) and the JSON body of GET /api/poll (spec §4).
// Pure functions, so bench-tools.test.js can check them without a server.

/**
 * The entries of one answer, each handed to `visit`: seq(rest) for a message
 * from `poster` whose text starts with `textPrefix` (rest is what follows the
 * prefix), gap() for a gap entry, other() for anything else (presence notices).
 */
export function readTextAnswer(body, poster, textPrefix, visit) {
  const prefix = `${poster} : ${textPrefix}`;
  let from = 0;
  for (;;) {
    const nl = body.indexOf("\n", from);
    if (nl < 0) break;
    if (body.startsWith(prefix, from)) visit.seq(body.slice(from + prefix.length, nl));
    else if (body.startsWith("* ", from) && body.lastIndexOf(" missed", nl) > from) visit.gap();
    else visit.other();
    from = nl + 1;
  }
}

/**
 * The same for `{"messages":[...],"cursor":C}`, parsed whole as a client
 * would; answers the cursor as a string, or undefined when the body is not
 * that shape (nothing is visited then).
 */
export function readJsonAnswer(body, poster, textPrefix, visit) {
  let answer;
  try {
    answer = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (answer === null || typeof answer !== "object" || !Array.isArray(answer.messages) || !Number.isSafeInteger(answer.cursor)) return undefined;
  for (const m of answer.messages) {
    if (m?.type === "gap") visit.gap();
    else if (m?.type === "message" && m.from === poster && typeof m.text === "string" && m.text.startsWith(textPrefix)) {
      visit.seq(m.text.slice(textPrefix.length));
    } else visit.other();
  }
  return String(answer.cursor);
}

/**
 * The token and cursor of a POST /api/join answer, or undefined. Read by
 * their keys, not parsed whole: the answer lists every member of the room,
 * so parsing it would make registering N pollers cost the generator O(N²).
 * No name can hold a quote or a colon, so neither key can occur in that list.
 */
export function readJoinAnswer(body) {
  const token = /"token":"([^"\\]+)"/.exec(body)?.[1];
  const cursor = /"cursor":(\d{1,16})[,}]/.exec(body)?.[1];
  return token !== undefined && cursor !== undefined ? { token, cursor } : undefined;
}
