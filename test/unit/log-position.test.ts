/** Resuming a log: the server repeats lines from sinceTime on; each line is delivered once. */
import { LogPosition, timestampNanos } from "../../src/core/cluster/log-follower.js";

test("RFC3339Nano with trimmed zeros compares by time, not as text", () => {
  expect(
    timestampNanos("2026-11-22T07:17:08.5Z")! > timestampNanos("2026-11-22T07:17:08.49Z")!,
  ).toBe(true);
  expect(timestampNanos("2026-11-22T07:17:08Z")).toBe(
    timestampNanos("2026-11-22T07:17:08.000000000Z"),
  );
  expect(timestampNanos("not a time")).toBeUndefined();
});

test("a resumed stream delivers only what was not delivered, lines sharing a timestamp included", () => {
  const position = new LogPosition();
  const first = ["07:17:08.1Z", "07:17:08.2Z", "07:17:08.2Z"].map((t) => `2026-11-22T${t}`);
  position.startStream();
  expect(first.map((t) => position.accept(t))).toEqual([true, true, true]);
  expect(position.sinceTime).toBe("2026-11-22T07:17:08.2Z");

  // The server resends from the second on (sinceTime is cut to whole seconds), then goes on.
  const again = ["07:17:08.1Z", "07:17:08.2Z", "07:17:08.2Z", "07:17:08.2Z", "07:17:09Z"].map(
    (t) => `2026-11-22T${t}`,
  );
  position.startStream();
  expect(again.map((t) => position.accept(t))).toEqual([false, false, false, true, true]);
});
