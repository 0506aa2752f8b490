import { formatBytes, formatCount } from "../../src/core/build/format.js";

describe("formatCount", () => {
  test.each([
    [0, "0"],
    [7, "7"],
    [999, "999"],
    [1000, "1,000"],
    [6655, "6,655"],
    [20000, "20,000"],
    [1234567, "1,234,567"],
  ])("%d → %s, as toLocaleString('en-US') writes it", (count, text) => {
    expect(formatCount(count)).toBe(text);
    expect(formatCount(count)).toBe(count.toLocaleString("en-US"));
  });
});

describe("formatBytes", () => {
  test.each([
    [512, "512 B"],
    [2048, "2.0 KiB"],
    [191_268_864, "182.4 MiB"],
  ])("%d → %s", (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});
