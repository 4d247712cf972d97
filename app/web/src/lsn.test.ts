import { describe, expect, it } from "vitest";
import { compareLsn, formatLsn, isLsn, maxLsn, normalizeLsn, parseLsn } from "./lsn";

describe("parseLsn", () => {
  it("reads the high and low hex parts", () => {
    expect(parseLsn("0/3000148")).toEqual({ high: 0, low: 0x3000148 });
    expect(parseLsn("16/B374D848")).toEqual({ high: 0x16, low: 0xb374d848 });
    expect(parseLsn("FFFFFFFF/FFFFFFFF")).toEqual({ high: 0xffffffff, low: 0xffffffff });
    expect(parseLsn(" 1/a ")).toEqual({ high: 1, low: 10 });
  });

  it.each(["", "0", "0/", "/0", "0/0/0", "g/1", "1/g", "123456789/0", "0/123456789", "-1/0", "0x1/0"])(
    "rejects %j",
    (text) => {
      expect(parseLsn(text)).toBeNull();
      expect(isLsn(text)).toBe(false);
    },
  );

  it("formats as PostgreSQL prints it", () => {
    expect(formatLsn({ high: 0, low: 0x3000148 })).toBe("0/3000148");
    expect(normalizeLsn("00/0a")).toBe("0/A");
    expect(normalizeLsn("nope")).toBeNull();
  });
});

describe("compareLsn", () => {
  it("orders numerically where string order is wrong", () => {
    expect(compareLsn("0/A", "0/9")).toBeGreaterThan(0); // "A" > "9" — agrees by luck
    expect(compareLsn("0/10", "0/A")).toBeGreaterThan(0); // 16 > 10, but "0/10" < "0/A" as strings
    expect(compareLsn("0/3000148", "0/FFFFFF")).toBeGreaterThan(0); // longer is larger here
    expect(compareLsn("1/0", "0/FFFFFFFF")).toBeGreaterThan(0); // high part first
    expect(compareLsn("9/0", "10/0")).toBeLessThan(0); // "9/0" > "10/0" as strings
    expect(compareLsn("0/FFFFFFFF", "1/0")).toBeLessThan(0);
  });

  it("ignores case and leading zeros", () => {
    expect(compareLsn("0/abc", "0/ABC")).toBe(0);
    expect(compareLsn("000/0ABC", "0/ABC")).toBe(0);
  });

  it("is a total order usable by sort", () => {
    const sorted = ["1/0", "0/A", "0/10", "0/9", "A/1", "2/FFFFFFFF"].sort(compareLsn);
    expect(sorted).toEqual(["0/9", "0/A", "0/10", "1/0", "2/FFFFFFFF", "A/1"]);
  });

  it("throws on a value that is not an LSN", () => {
    expect(() => compareLsn("0/1", "x")).toThrow(RangeError);
    expect(() => compareLsn("", "0/1")).toThrow(RangeError);
  });
});

describe("maxLsn", () => {
  it("keeps the later one, in canonical form", () => {
    expect(maxLsn("0/10", "0/a")).toBe("0/10");
    expect(maxLsn("0/a", "0/10")).toBe("0/10");
    expect(maxLsn("1/0", "0/ffffffff")).toBe("1/0");
  });

  it("ignores nulls and junk", () => {
    expect(maxLsn(null, "0/1")).toBe("0/1");
    expect(maxLsn("0/1", null)).toBe("0/1");
    expect(maxLsn(null, null)).toBeNull();
    expect(maxLsn("garbage", "0/2")).toBe("0/2");
    expect(maxLsn("0/2", "garbage")).toBe("0/2");
  });
});
