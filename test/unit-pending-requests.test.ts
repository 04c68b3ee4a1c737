import { expect, it } from "vitest";
import { ChatError } from "../src/errors.js";
import { PendingRequests } from "../src/cluster/pending-requests.js";

const refusal = (): ChatError => new ChatError("store_unavailable");
const outcome = <T>(p: Promise<T>): Promise<T | string> => p.catch((error: unknown) => (error instanceof ChatError ? error.code : String(error)));

it("answers each request once: with its outcome, with what the state tells, or 503; a stored one never by the fate deadline", async () => {
  const pending = new PendingRequests(30, refusal);
  const applied = outcome(pending.add(1, (o) => `applied ${String(o)}`, () => undefined));
  const unstored = outcome(pending.add(2, (o) => o, () => undefined));
  const stored = outcome(pending.add(3, (o) => o, () => undefined));
  const recovered = outcome(pending.add(4, (o) => `recovered ${String(o)}`, () => ({ outcome: 42 })));
  const unknown = outcome(pending.add(5, (o) => o, () => undefined));
  pending.stored([3, 4, 5]);
  pending.settle(1, 7, undefined, true);
  pending.settle(1, 8, undefined, true); // a second outcome for the same request changes nothing
  expect(await applied).toBe("applied 7");
  // Not stored within the deadline: 503. Stored: still waiting after it.
  expect(await unstored).toBe("store_unavailable");
  await new Promise((resolve) => setTimeout(resolve, 60));
  pending.doubtStored();
  expect(pending.doubtful()).toEqual([3, 4, 5]);
  pending.settleFromState(4, true);
  pending.settleFromState(5, true);
  expect(await recovered).toBe("recovered 42");
  expect(await unknown).toBe("store_unavailable");
  // A throwing capture rejects its request with what it threw.
  const throwing = outcome(pending.add(6, () => { throw new ChatError("name_taken"); }, () => undefined));
  pending.settle(6, undefined, undefined, true);
  expect(await throwing).toBe("name_taken");
  pending.refuseAll();
  expect(await stored).toBe("store_unavailable");
  expect(pending.doubtful()).toEqual([]);
});
