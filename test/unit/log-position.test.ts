/** Resuming a log: the server repeats lines from sinceTime on; each line is delivered once. */
import { LogPosition, timestampNanos } from "../../src/core/cluster/log-follower.js";

const at = (time: string) => `2026-11-22T${time}`;

/** Feeds one read of [time, text] lines; returns the texts delivered. */
function read(position: LogPosition, lines: Array<[string, string]>): string[] {
  position.startStream();
  return lines.filter(([time, text]) => position.accept(at(time), text)).map(([, text]) => text);
}

test("RFC3339Nano with trimmed zeros compares by time, not as text", () => {
  expect(
    timestampNanos("2026-11-22T07:17:08.5Z")! > timestampNanos("2026-11-22T07:17:08.49Z")!,
  ).toBe(true);
  expect(timestampNanos("2026-11-22T07:17:08Z")).toBe(
    timestampNanos("2026-11-22T07:17:08.000000000Z"),
  );
  expect(timestampNanos("not a time")).toBeUndefined();
});

test("a resumed read delivers only what was not delivered, lines sharing a timestamp included", () => {
  const position = new LogPosition();
  expect(
    read(position, [
      ["07:17:08.1Z", "a"],
      ["07:17:08.2Z", "b"],
      ["07:17:08.2Z", "b"],
    ]),
  ).toEqual(["a", "b", "b"]);
  // A second before the newest line, in whole seconds (what the API server passes on).
  expect(position.sinceTime).toBe(at("07:17:07Z"));
  // The server repeats everything from there, then goes on.
  expect(
    read(position, [
      ["07:17:08.1Z", "a"],
      ["07:17:08.2Z", "b"],
      ["07:17:08.2Z", "b"],
      ["07:17:08.2Z", "b"],
      ["07:17:09Z", "c"],
    ]),
  ).toEqual(["b", "c"]);
});

test("a line stamped earlier than the one before it (stdout and stderr) is delivered, and once", () => {
  const position = new LogPosition();
  expect(
    read(position, [
      ["07:17:08.300Z", "stderr: step 1"],
      ["07:17:08.299Z", "stdout: output of step 1"],
      ["07:17:09.999Z", "stderr: step 2"],
    ]),
  ).toEqual(["stderr: step 1", "stdout: output of step 1", "stderr: step 2"]);
  // Cut here. Written after step 2 but stamped before it, across a second boundary.
  expect(position.sinceTime).toBe(at("07:17:08Z"));
  expect(
    read(position, [
      ["07:17:08.300Z", "stderr: step 1"],
      ["07:17:08.299Z", "stdout: output of step 1"],
      ["07:17:09.999Z", "stderr: step 2"],
      ["07:17:08.998Z", "stdout: output of step 2"],
      ["07:17:10.5Z", "done"],
    ]),
  ).toEqual(["stdout: output of step 2", "done"]);
});

test("a line that repeats an earlier one's text and time exactly is still new after the replay", () => {
  const position = new LogPosition();
  expect(read(position, [["07:17:08.1Z", "tick"]])).toEqual(["tick"]);
  expect(
    read(position, [
      ["07:17:08.1Z", "tick"],
      ["07:17:08.1Z", "tick"],
      ["07:17:08.1Z", "tick"],
    ]),
  ).toEqual(["tick", "tick"]);
});

test("a server that ignores sinceTime and resends the start of the log adds nothing", () => {
  const position = new LogPosition();
  const first: Array<[string, string]> = [
    ["07:17:01Z", "one"],
    ["07:17:05Z", "two"],
    ["07:17:09Z", "three"],
  ];
  expect(read(position, first)).toEqual(["one", "two", "three"]);
  expect(read(position, [...first, ["07:17:10Z", "four"]])).toEqual(["four"]);
});

test("what lies before the resume point is forgotten as the log moves on", () => {
  const position = new LogPosition();
  const lines: Array<[string, string]> = [];
  for (let second = 10; second < 50; second++) lines.push([`07:17:${second}Z`, `line ${second}`]);
  expect(read(position, lines)).toHaveLength(40);
  expect(position.sinceTime).toBe(at("07:17:48Z"));
  // Only the last two seconds are repeated and matched; the rest could never come again.
  expect(read(position, [...lines.slice(-2), ["07:17:50Z", "line 50"]])).toEqual(["line 50"]);
});

test("lines without a timestamp are passed on as they are", () => {
  const position = new LogPosition();
  position.startStream();
  expect(position.accept("", "unstamped")).toBe(true);
  expect(position.sinceTime).toBeUndefined();
});
