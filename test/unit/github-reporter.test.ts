/** The build log cannot issue workflow commands; the action's own warnings still can. */
import { createGitHubReporter, looksLikeWorkflowCommand } from "../../src/github/reporter.js";

test.each([
  ["::set-output name=x::y", true],
  ["   ::add-mask::secret", true],
  ["echo ##[set-env name=A;]1", true],
  ["#5 [2/3] RUN make", false],
  ['time="2026-11-22T07:17:08Z" level=info msg="COPY app.txt /app/app.txt"', false],
])("%j reads as a workflow command: %s", (line, expected) => {
  expect(looksLikeWorkflowCommand(line)).toBe(expected);
});

test("a command-like build line is fenced by stop-commands; plain lines are printed as they are", () => {
  const written: string[] = [];
  const reporter = createGitHubReporter((text) => written.push(text));
  reporter.buildLog({ container: "build", time: "", text: "#5 RUN make" });
  reporter.buildLog({ container: "build", time: "", text: "::warning::from the Dockerfile" });
  expect(written[0]).toBe("#5 RUN make\n");
  const fenced = written[1].split("\n");
  const token = /^::stop-commands::([0-9a-f]{32})$/.exec(fenced[0])?.[1];
  expect(token).toBeDefined();
  expect(fenced[1]).toBe("::warning::from the Dockerfile");
  expect(fenced[2]).toBe(`::${token}::`);
});
