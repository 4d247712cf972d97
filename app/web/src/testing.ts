// Test data shared by the unit tests (imported only by *.test.ts(x) files).
import type { ResponseInfo } from "./api";

/** A GET of the theme list answered by chennai's second API instance from a replica. */
export function responseInfo(overrides: Partial<ResponseInfo> = {}): ResponseInfo {
  return {
    method: "GET",
    path: "/api/v1/themes",
    status: 200,
    servedBy: "chennai/chennai-api-2",
    region: "chennai",
    instance: "chennai-api-2",
    dbRole: "replica",
    commitLsn: null,
    sentMinLsn: null,
    at: new Date(0),
    ...overrides,
  };
}
