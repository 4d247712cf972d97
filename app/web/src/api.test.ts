import { describe, expect, it } from "vitest";
import {
  ApiClient,
  ApiError,
  DEFAULT_RETRY_DELAY_S,
  MAX_RETRY_DELAY_S,
  abortableSleep,
  parseErrorBody,
  parseRetryAfter,
  parseServedBy,
  retryDelayS,
  type ResponseInfo,
  type RetryNotice,
} from "./api";
import { LsnStore } from "./lsnStore";

// -- a fake fetch: answers from a script, records what was sent ------------------

interface Sent {
  url: string;
  method: string;
  headers: Headers;
  body: string | null;
  init: RequestInit;
}

type Scripted = Response | Error | (() => Response);

function fakeFetch(script: Scripted[]) {
  const sent: Sent[] = [];
  const fetch = async (url: string, init: RequestInit): Promise<Response> => {
    sent.push({
      url,
      method: init.method ?? "GET",
      headers: new Headers(init.headers),
      body: typeof init.body === "string" ? init.body : null,
      init,
    });
    const next = script.shift();
    if (next === undefined) throw new Error(`unexpected request ${init.method} ${url}`);
    if (next instanceof Error) throw next;
    return typeof next === "function" ? next() : next;
  };
  return { fetch, sent };
}

const THEME = {
  id: 7,
  name: "Ocean",
  config: { primary: "#0055ff" },
  created_at: "2025-01-01T00:00:00Z",
  updated_at: "2025-01-01T00:00:00Z",
};

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(status === 204 ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

function failover(retryAfter = "2", servedBy = "chennai/chennai-api-2"): Response {
  return json(
    503,
    { error: { code: "database_unavailable", field: null, message: "no database node answered within 3s" } },
    { "Retry-After": retryAfter, "X-Served-By": servedBy },
  );
}

function setup(script: Scripted[], options: { lsn?: string; maxReadRetries?: number } = {}) {
  const { fetch, sent } = fakeFetch(script);
  const lsn = new LsnStore(null);
  if (options.lsn !== undefined) lsn.observe(options.lsn);
  const sleeps: number[] = [];
  const client = new ApiClient({
    lsn,
    fetch,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    now: () => 1_000_000,
    ...(options.maxReadRetries === undefined ? {} : { maxReadRetries: options.maxReadRetries }),
  });
  const responses: ResponseInfo[] = [];
  const retries: (RetryNotice | null)[] = [];
  client.onResponse((info) => responses.push(info));
  client.onRetry((_id, notice) => retries.push(notice));
  return { client, sent, lsn, sleeps, responses, retries };
}

async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (exc) {
    if (exc instanceof ApiError) return exc;
    throw exc;
  }
  throw new Error("expected the promise to reject");
}

// -- header extraction ----------------------------------------------------------

describe("response headers", () => {
  it("reports region, instance and database role of every response", async () => {
    const { client, responses } = setup([
      json(200, { items: [THEME], next_cursor: "dDo3" }, { "X-Served-By": "chennai/chennai-api-2", "X-DB-Role": "replica" }),
    ]);
    const { data, info } = await client.listThemes({ limit: 5 });
    expect(data.items[0]?.name).toBe("Ocean");
    expect(data.next_cursor).toBe("dDo3");
    expect(info).toMatchObject({
      method: "GET",
      path: "/api/v1/themes?limit=5",
      status: 200,
      servedBy: "chennai/chennai-api-2",
      region: "chennai",
      instance: "chennai-api-2",
      dbRole: "replica",
      commitLsn: null,
    });
    expect(responses).toEqual([info]);
  });

  it("splits X-Served-By at the first slash only", () => {
    expect(parseServedBy("delhi/delhi-api-1")).toEqual({ region: "delhi", instance: "delhi-api-1" });
    expect(parseServedBy("delhi/a/b")).toEqual({ region: "delhi", instance: "a/b" });
    expect(parseServedBy("delhi")).toEqual({ region: "delhi", instance: null });
    expect(parseServedBy("")).toEqual({ region: null, instance: null });
    expect(parseServedBy(null)).toEqual({ region: null, instance: null });
  });

  it("copes with a response that names nobody (e.g. the web server's own error)", async () => {
    const { client } = setup([new Response("bad gateway", { status: 500, statusText: "Internal Server Error" })]);
    const error = await rejection(client.getTheme(1));
    expect(error.info.servedBy).toBeNull();
    expect(error.info.dbRole).toBeNull();
    expect(error.code).toBe("http_500");
    expect(error.message).toContain("the web server");
  });

  it("uses relative same-origin URLs only", async () => {
    const { client, sent } = setup([json(200, { items: [], next_cursor: null }), json(200, THEME)]);
    await client.listThemes({ limit: 20, cursor: "a b&c" });
    await client.getTheme(7);
    expect(sent.map((s) => s.url)).toEqual(["/api/v1/themes?limit=20&cursor=a+b%26c", "/api/v1/themes/7"]);
    expect(sent[0]?.init.credentials).toBe("same-origin");
    expect(sent[0]?.init.cache).toBe("no-store");
  });
});

// -- read-your-writes -------------------------------------------------------------

describe("read-your-writes token", () => {
  it("sends no X-Min-LSN before any write", async () => {
    const { client, sent } = setup([json(200, { items: [], next_cursor: null })]);
    await client.listThemes();
    expect(sent[0]?.headers.has("X-Min-LSN")).toBe(false);
    expect(sent[0]?.url).toBe("/api/v1/themes");
  });

  it("records X-Commit-LSN of a write and sends it as X-Min-LSN on later reads", async () => {
    const { client, sent, lsn } = setup([
      json(201, THEME, { "X-Commit-LSN": "0/3000148", "X-Served-By": "delhi/delhi-api-1", "X-DB-Role": "primary" }),
      json(200, { items: [THEME], next_cursor: null }, { "X-DB-Role": "replica" }),
      json(200, THEME),
    ]);
    const created = await client.createTheme({ name: "Ocean", config: { primary: "#0055ff" } });
    expect(created.info.commitLsn).toBe("0/3000148");
    expect(lsn.get()).toBe("0/3000148");
    const list = await client.listThemes();
    await client.getTheme(7);
    expect(sent[1]?.headers.get("X-Min-LSN")).toBe("0/3000148");
    expect(sent[2]?.headers.get("X-Min-LSN")).toBe("0/3000148");
    expect(list.info.sentMinLsn).toBe("0/3000148");
  });

  it("keeps the highest LSN, compared numerically", async () => {
    const { client, sent } = setup(
      [json(200, THEME, { "X-Commit-LSN": "0/9" }), json(204, null, { "X-Commit-LSN": "0/A" }), json(200, THEME)],
      { lsn: "0/10" },
    );
    await client.replaceTheme(7, { name: "x", config: {} });
    await client.deleteTheme(7);
    await client.getTheme(7);
    expect(sent[2]?.headers.get("X-Min-LSN")).toBe("0/10"); // 0x10 beats 0x9 and 0xA
  });

  it("does not send X-Min-LSN on writes", async () => {
    const { client, sent } = setup([json(200, THEME, { "X-Commit-LSN": "0/20" })], { lsn: "0/10" });
    await client.patchTheme(7, { name: "y" });
    expect(sent[0]?.headers.has("X-Min-LSN")).toBe(false);
  });
});

// -- writes ---------------------------------------------------------------------

describe("writes", () => {
  it("sends JSON bodies with the right method and path", async () => {
    const { client, sent } = setup([
      json(201, THEME),
      json(200, THEME),
      json(200, THEME),
      json(204, null),
    ]);
    await client.createTheme({ name: "Ocean", config: { a: 1 } });
    await client.replaceTheme(7, { name: "Sea", config: {} });
    await client.patchTheme(7, { config: { b: 2 } });
    const deleted = await client.deleteTheme(7);
    expect(sent.map((s) => `${s.method} ${s.url}`)).toEqual([
      "POST /api/v1/themes",
      "PUT /api/v1/themes/7",
      "PATCH /api/v1/themes/7",
      "DELETE /api/v1/themes/7",
    ]);
    expect(JSON.parse(sent[0]?.body ?? "")).toEqual({ name: "Ocean", config: { a: 1 } });
    expect(sent[0]?.headers.get("Content-Type")).toBe("application/json");
    expect(sent[3]?.body).toBeNull();
    expect(deleted.data).toBeNull();
  });

  it("never retries a write on 503, and reports Retry-After for the UI", async () => {
    const { client, sent, sleeps, retries } = setup([failover("3")]);
    const error = await rejection(client.createTheme({ name: "x", config: {} }));
    expect(sent).toHaveLength(1);
    expect(sleeps).toEqual([]);
    expect(retries).toEqual([]);
    expect(error.status).toBe(503);
    expect(error.code).toBe("database_unavailable");
    expect(error.retryAfterS).toBe(3);
    expect(error.failingOver).toBe(true);
    expect(error.temporary).toBe(true);
    expect(error.info.region).toBe("chennai");
  });

  it("never retries a write on a network error", async () => {
    const { client, sent } = setup([new TypeError("Failed to fetch")]);
    const error = await rejection(client.deleteTheme(7));
    expect(sent).toHaveLength(1);
    expect(error.status).toBeNull();
    expect(error.code).toBe("network_error");
    expect(error.temporary).toBe(true);
  });
});

// -- errors -----------------------------------------------------------------------

describe("error parsing", () => {
  it("reads code, field and message of the API's error body", async () => {
    const { client } = setup([
      json(422, { error: { code: "validation_failed", field: "name", message: "name must be 1..100 characters" } }),
    ]);
    const error = await rejection(client.createTheme({ name: "", config: {} }));
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(422);
    expect(error.code).toBe("validation_failed");
    expect(error.field).toBe("name");
    expect(error.message).toBe("name must be 1..100 characters");
    expect(error.retryAfterS).toBeNull();
    expect(error.temporary).toBe(false);
  });

  it("treats a null or missing field as no field", () => {
    expect(parseErrorBody('{"error":{"code":"not_found","field":null,"message":"gone"}}')).toEqual({
      code: "not_found",
      field: null,
      message: "gone",
    });
    expect(parseErrorBody('{"error":{"code":"x","message":"y"}}')?.field).toBeNull();
  });

  it.each(["", "<html>502</html>", "[]", '{"error":"text"}', '{"error":{"code":1,"message":"m"}}', "null"])(
    "falls back when the body is not the API's error shape: %j",
    (text) => {
      expect(parseErrorBody(text)).toBeNull();
    },
  );

  it("makes a readable error of a non-JSON failure", async () => {
    const { client } = setup([new Response("<html>oops</html>", { status: 404, statusText: "Not Found", headers: { "X-Served-By": "delhi/delhi-api-1" } })]);
    const error = await rejection(client.getTheme(9));
    expect(error.status).toBe(404);
    expect(error.code).toBe("http_404");
    expect(error.message).toBe("HTTP 404 Not Found from delhi/delhi-api-1.");
  });

  it("reports a 200 whose body is not JSON (e.g. index.html served for /api)", async () => {
    const { client } = setup([new Response("<!doctype html>", { status: 200, headers: { "Content-Type": "text/html" } })]);
    const error = await rejection(client.getTheme(1, undefined));
    expect(error.code).toBe("bad_response");
  });
});

// -- read retries -------------------------------------------------------------------

describe("read retries", () => {
  it("retries a read after 503, waiting Retry-After seconds, and announces it", async () => {
    const { client, sent, sleeps, retries, responses } = setup([
      failover("2"),
      json(200, { items: [THEME], next_cursor: null }, { "X-Served-By": "delhi/delhi-api-1", "X-DB-Role": "primary" }),
    ]);
    const { data, info } = await client.listThemes();
    expect(data.items).toHaveLength(1);
    expect(info.region).toBe("delhi");
    expect(sent).toHaveLength(2);
    expect(sleeps).toEqual([2000]);
    expect(retries).toHaveLength(2);
    expect(retries[0]).toMatchObject({ retry: 1, maxRetries: 4, delayS: 2, method: "GET", path: "/api/v1/themes", until: 1_002_000 });
    expect(retries[0]?.error.failingOver).toBe(true);
    expect(retries[1]).toBeNull(); // the read is done: the banner goes
    expect(responses.map((r) => r.status)).toEqual([503, 200]);
  });

  it("sends X-Min-LSN on every retry too", async () => {
    const { client, sent } = setup([failover("1"), json(200, THEME)], { lsn: "0/5" });
    await client.getTheme(7);
    expect(sent.map((s) => s.headers.get("X-Min-LSN"))).toEqual(["0/5", "0/5"]);
  });

  it("gives up after a bounded number of retries and throws the last error", async () => {
    const { client, sent, sleeps, retries } = setup([failover("1"), failover("1"), failover("1"), failover("7")], {
      maxReadRetries: 3,
    });
    const error = await rejection(client.listThemes());
    expect(sent).toHaveLength(4); // 1 try + 3 retries
    expect(sleeps).toEqual([1000, 1000, 1000]);
    expect(error.status).toBe(503);
    expect(error.retryAfterS).toBe(7);
    expect(retries.filter((r) => r !== null).map((r) => r?.retry)).toEqual([1, 2, 3]);
    expect(retries.at(-1)).toBeNull();
  });

  it("retries network errors, 502 and 504 with the default delay", async () => {
    const { client, sent, sleeps } = setup([
      new TypeError("Failed to fetch"),
      new Response("", { status: 502 }),
      new Response("", { status: 504 }),
      json(200, THEME),
    ]);
    await client.getTheme(7);
    expect(sent).toHaveLength(4);
    expect(sleeps).toEqual([DEFAULT_RETRY_DELAY_S * 1000, DEFAULT_RETRY_DELAY_S * 1000, DEFAULT_RETRY_DELAY_S * 1000]);
  });

  it("does not retry client errors or 500", async () => {
    for (const status of [400, 404, 422, 500]) {
      const { client, sent } = setup([json(status, { error: { code: "x", field: null, message: "m" } })]);
      const error = await rejection(client.getTheme(7));
      expect(error.status).toBe(status);
      expect(sent).toHaveLength(1);
    }
  });

  it("stops waiting when aborted", async () => {
    const { fetch, sent } = fakeFetch([failover("5"), json(200, THEME)]);
    const client = new ApiClient({ lsn: new LsnStore(null), fetch });
    const abort = new AbortController();
    const pending = client.getTheme(7, abort.signal);
    await new Promise((resolve) => setTimeout(resolve, 10));
    abort.abort();
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
    expect(sent).toHaveLength(1);
  });
});

describe("Retry-After", () => {
  it("reads delta-seconds", () => {
    expect(parseRetryAfter("2")).toBe(2);
    expect(parseRetryAfter(" 10 ")).toBe(10);
    expect(parseRetryAfter("0")).toBe(0);
  });

  it("reads an HTTP date relative to now", () => {
    const now = Date.parse("2025-01-01T00:00:00Z");
    expect(parseRetryAfter("Wed, 01 Jan 2025 00:00:05 GMT", now)).toBe(5);
    expect(parseRetryAfter("Tue, 31 Dec 2024 23:59:00 GMT", now)).toBe(0);
  });

  it("is null when absent or unreadable", () => {
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("soon")).toBeNull();
    expect(parseRetryAfter("-1")).toBeNull();
  });

  it("bounds the wait between read retries", () => {
    expect(retryDelayS(null)).toBe(DEFAULT_RETRY_DELAY_S);
    expect(retryDelayS(0)).toBe(1);
    expect(retryDelayS(3)).toBe(3);
    expect(retryDelayS(3600)).toBe(MAX_RETRY_DELAY_S);
  });
});

describe("abortableSleep", () => {
  it("resolves after the delay", async () => {
    await expect(abortableSleep(1)).resolves.toBeUndefined();
  });

  it("rejects at once if already aborted", async () => {
    const abort = new AbortController();
    abort.abort();
    await expect(abortableSleep(10_000, abort.signal)).rejects.toMatchObject({ name: "AbortError" });
  });
});
