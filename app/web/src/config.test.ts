import { describe, expect, it } from "vitest";
import { CONFIG_MAX_BYTES, jsonBytes, validateConfigText, validateName } from "./config";

describe("validateConfigText", () => {
  it("accepts a JSON object", () => {
    expect(validateConfigText('{"primary": "#123456", "n": [1, 2]}')).toEqual({
      ok: true,
      value: { primary: "#123456", n: [1, 2] },
    });
    expect(validateConfigText("  {}  ")).toEqual({ ok: true, value: {} });
  });

  it("rejects empty text", () => {
    const result = validateConfigText("   ");
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(/required/);
  });

  it("rejects text that is not JSON, saying so", () => {
    const result = validateConfigText("{primary: 1}");
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(/not valid JSON/);
    expect(validateConfigText('{"a": 1,}').ok).toBe(false);
  });

  it.each([
    ["[]", "an array"],
    ["null", "null"],
    ["42", "a number"],
    ['"text"', "a string"],
    ["true", "a boolean"],
  ])("rejects %s as %s", (text, what) => {
    const result = validateConfigText(text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toContain(`not ${what}`);
  });

  it("limits the compact JSON size to 16 KiB, counting UTF-8 bytes", () => {
    const overhead = jsonBytes({ k: "" }); // {"k":""}
    const exact = { k: "x".repeat(CONFIG_MAX_BYTES - overhead) };
    expect(jsonBytes(exact)).toBe(CONFIG_MAX_BYTES);
    expect(validateConfigText(JSON.stringify(exact)).ok).toBe(true);
    // Pretty-printing whitespace does not count: the size is of compact JSON.
    expect(validateConfigText(JSON.stringify(exact, null, 8)).ok).toBe(true);

    const over = { k: "x".repeat(CONFIG_MAX_BYTES - overhead + 1) };
    const result = validateConfigText(JSON.stringify(over));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toContain(`${CONFIG_MAX_BYTES + 1} bytes`);

    // "é" is 2 bytes in UTF-8: half as many characters reach the limit.
    const wide = { k: "é".repeat(Math.ceil((CONFIG_MAX_BYTES - overhead + 1) / 2)) };
    expect(validateConfigText(JSON.stringify(wide)).ok).toBe(false);
  });

  it("rejects NUL characters, which PostgreSQL cannot store", () => {
    expect(validateConfigText('{"a": "x\\u0000y"}').ok).toBe(false);
    expect(validateConfigText('{"a\\u0000": 1}').ok).toBe(false);
    expect(validateConfigText('{"a": ["\\u0000"]}').ok).toBe(false);
  });
});

describe("validateName", () => {
  it("accepts 1..100 characters", () => {
    expect(validateName("Ocean")).toEqual({ ok: true, value: "Ocean" });
    expect(validateName("x".repeat(100)).ok).toBe(true);
  });

  it("rejects empty and too long names", () => {
    expect(validateName("").ok).toBe(false);
    const long = validateName("x".repeat(101));
    expect(long.ok).toBe(false);
    if (!long.ok) expect(long.error).toContain("101");
  });

  it("counts code points like the API, not UTF-16 units", () => {
    expect(validateName("😀".repeat(100)).ok).toBe(true); // 200 UTF-16 units
    expect(validateName("😀".repeat(101)).ok).toBe(false);
  });

  it("rejects NUL", () => {
    expect(validateName("a\u0000b").ok).toBe(false);
  });
});
