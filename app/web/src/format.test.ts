import { describe, expect, it } from "vitest";
import { colourEntries, regionClass, requestText, servedByText, temporaryReason } from "./format";
import { responseInfo as info } from "./testing";

describe("servedByText", () => {
  it("names region, instance and database role", () => {
    expect(servedByText(info())).toBe("served by chennai / chennai-api-2 · database: replica");
    expect(servedByText(info({ dbRole: null }))).toBe("served by chennai / chennai-api-2 · database: n/a");
    expect(servedByText(info({ dbRole: null, status: 503 }))).toBe(
      "served by chennai / chennai-api-2 · database: unavailable",
    );
  });

  it("says when nobody answered or nobody was named", () => {
    expect(servedByText(info({ status: null, servedBy: null, region: null, instance: null, dbRole: null }))).toContain(
      "could not be reached",
    );
    expect(servedByText(info({ servedBy: null, region: null, instance: null }))).toContain("no X-Served-By");
  });

  it("shows the request", () => {
    expect(requestText(info())).toBe("GET /api/v1/themes → 200");
    expect(requestText(info({ status: null }))).toBe("GET /api/v1/themes → no answer");
  });
});

describe("regionClass", () => {
  it("is stable per region and distinguishes the two regions", () => {
    expect(regionClass("delhi")).toBe(regionClass("delhi"));
    expect(regionClass("delhi")).not.toBe(regionClass("chennai"));
    expect(regionClass(null)).toBe("region-none");
  });
});

describe("temporaryReason", () => {
  it("says the database is failing over on 503", () => {
    expect(temporaryReason({ status: 503, code: "database_unavailable" })).toBe("the database is failing over");
    expect(temporaryReason({ status: 503, code: "starting" })).toBe("the API is starting");
    expect(temporaryReason({ status: null, code: "network_error" })).toBe("the API could not be reached");
    expect(temporaryReason({ status: 502, code: "http_502" })).toContain("HTTP 502");
  });
});

describe("colourEntries", () => {
  it("picks hex colours only", () => {
    expect(colourEntries({ a: "#fff", b: "red", c: "#12345678", d: 3, e: "#12345", f: "#abcdef" })).toEqual([
      ["a", "#fff"],
      ["c", "#12345678"],
      ["f", "#abcdef"],
    ]);
  });
});
