/**
 * The client for geoha's themes API (same origin, relative URLs: Caddy proxies /api).
 *
 * - Every response is reported to `onResponse` listeners with who served it
 *   (`X-Served-By: region/instance`, `X-DB-Role`), for the status bar.
 * - Writes record `X-Commit-LSN` in the LSN store; reads send the highest LSN
 *   seen as `X-Min-LSN`, so a replica never hides this tab's own writes.
 * - Idempotent reads are retried a bounded number of times on 503 (waiting the
 *   `Retry-After` seconds), 502/504 and network errors, announcing each wait to
 *   `onRetry` listeners. Writes are never retried here: the caller shows the
 *   error and offers a retry button.
 */

import type { ThemeConfig } from "./config";
import type { LsnStore } from "./lsnStore";
import { normalizeLsn } from "./lsn";

export const API_BASE = "/api/v1";
export const DEFAULT_MAX_READ_RETRIES = 4;
/** Wait before retrying a read when the answer carried no Retry-After. */
export const DEFAULT_RETRY_DELAY_S = 2;
/** Never wait longer than this between read retries, whatever Retry-After says. */
export const MAX_RETRY_DELAY_S = 30;

export interface Theme {
  id: number;
  name: string;
  config: ThemeConfig;
  created_at: string;
  updated_at: string;
}

export interface ThemePage {
  items: Theme[];
  next_cursor: string | null;
}

export interface ThemeInput {
  name: string;
  config: ThemeConfig;
}

/** What one HTTP exchange told us about where it was served. */
export interface ResponseInfo {
  method: string;
  path: string;
  /** HTTP status, or `null` when no response arrived (network error). */
  status: number | null;
  /** Raw `X-Served-By`, e.g. `chennai/chennai-api-2`. */
  servedBy: string | null;
  region: string | null;
  instance: string | null;
  /** `X-DB-Role`: `primary` or `replica`; absent when the database was not used. */
  dbRole: string | null;
  /** `X-Commit-LSN` of a write. */
  commitLsn: string | null;
  /** The `X-Min-LSN` this request sent, if any. */
  sentMinLsn: string | null;
  at: Date;
}

export interface Result<T> {
  data: T;
  info: ResponseInfo;
}

export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    /** HTTP status, or `null` if the API could not be reached. */
    readonly status: number | null,
    readonly code: string,
    message: string,
    readonly field: string | null,
    /** Seconds from `Retry-After`, if the response carried it. */
    readonly retryAfterS: number | null,
    readonly info: ResponseInfo,
  ) {
    super(message);
  }

  /** A temporary condition where trying again later may work. */
  get temporary(): boolean {
    return this.status === null || this.status === 502 || this.status === 503 || this.status === 504;
  }

  /** 503 from the API: the database tier is failing over (or the API is starting). */
  get failingOver(): boolean {
    return this.status === 503;
  }
}

/** A read is waiting before its next try. */
export interface RetryNotice {
  /** Identifies the read (one read may announce several waits). */
  requestId: number;
  method: string;
  path: string;
  /** 1 for the first retry. */
  retry: number;
  maxRetries: number;
  delayS: number;
  /** When the next try starts (ms since epoch). */
  until: number;
  error: ApiError;
}

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;
type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface ApiClientOptions {
  lsn: LsnStore;
  /** Defaults to the global `fetch`; unit tests pass a fake. */
  fetch?: FetchLike;
  sleep?: Sleep;
  now?: () => number;
  maxReadRetries?: number;
}

interface RequestOptions {
  body?: unknown;
  signal?: AbortSignal | undefined;
}

export class ApiClient {
  private readonly lsn: LsnStore;
  private readonly fetchImpl: FetchLike | undefined;
  private readonly sleep: Sleep;
  private readonly now: () => number;
  readonly maxReadRetries: number;
  private readonly responseListeners = new Set<(info: ResponseInfo) => void>();
  private readonly retryListeners = new Set<(id: number, notice: RetryNotice | null) => void>();
  private nextRequestId = 1;

  constructor(options: ApiClientOptions) {
    this.lsn = options.lsn;
    this.fetchImpl = options.fetch;
    this.sleep = options.sleep ?? abortableSleep;
    this.now = options.now ?? Date.now;
    this.maxReadRetries = options.maxReadRetries ?? DEFAULT_MAX_READ_RETRIES;
  }

  /** Called with every response (and every failed attempt to get one). */
  onResponse(listener: (info: ResponseInfo) => void): () => void {
    this.responseListeners.add(listener);
    return () => this.responseListeners.delete(listener);
  }

  /** Called when a read starts waiting to retry, and with `null` when that read is done. */
  onRetry(listener: (requestId: number, notice: RetryNotice | null) => void): () => void {
    this.retryListeners.add(listener);
    return () => this.retryListeners.delete(listener);
  }

  // -- endpoints ---------------------------------------------------------------

  listThemes(
    params: { limit?: number; cursor?: string | null } = {},
    signal?: AbortSignal,
  ): Promise<Result<ThemePage>> {
    const query = new URLSearchParams();
    if (params.limit !== undefined) query.set("limit", String(params.limit));
    if (params.cursor) query.set("cursor", params.cursor);
    const text = query.toString();
    const suffix = text === "" ? "" : `?${text}`;
    return this.read<ThemePage>(`${API_BASE}/themes${suffix}`, signal);
  }

  getTheme(id: number, signal?: AbortSignal): Promise<Result<Theme>> {
    return this.read<Theme>(`${API_BASE}/themes/${encodeURIComponent(String(id))}`, signal);
  }

  createTheme(input: ThemeInput): Promise<Result<Theme>> {
    return this.write<Theme>("POST", `${API_BASE}/themes`, { body: input });
  }

  replaceTheme(id: number, input: ThemeInput): Promise<Result<Theme>> {
    return this.write<Theme>("PUT", themePath(id), { body: input });
  }

  patchTheme(id: number, input: Partial<ThemeInput>): Promise<Result<Theme>> {
    return this.write<Theme>("PATCH", themePath(id), { body: input });
  }

  deleteTheme(id: number): Promise<Result<null>> {
    return this.write<null>("DELETE", themePath(id), {});
  }

  // -- machinery ---------------------------------------------------------------

  /** GET with X-Min-LSN, retried on temporary failures a bounded number of times. */
  async read<T>(path: string, signal?: AbortSignal): Promise<Result<T>> {
    const requestId = this.nextRequestId++;
    let announced = false;
    try {
      for (let retry = 0; ; retry++) {
        try {
          return await this.exchange<T>("GET", path, { signal });
        } catch (exc) {
          if (!(exc instanceof ApiError) || !exc.temporary || retry >= this.maxReadRetries) {
            throw exc;
          }
          const delayS = retryDelayS(exc.retryAfterS);
          const notice: RetryNotice = {
            requestId,
            method: "GET",
            path,
            retry: retry + 1,
            maxRetries: this.maxReadRetries,
            delayS,
            until: this.now() + delayS * 1000,
            error: exc,
          };
          announced = true;
          this.emitRetry(requestId, notice);
          await this.sleep(delayS * 1000, signal);
        }
      }
    } finally {
      if (announced) this.emitRetry(requestId, null);
    }
  }

  /** A write: sent once. A failure is thrown for the caller to show (and offer a retry). */
  write<T>(method: string, path: string, options: RequestOptions): Promise<Result<T>> {
    return this.exchange<T>(method, path, options);
  }

  private async exchange<T>(method: string, path: string, options: RequestOptions): Promise<Result<T>> {
    const headers: Record<string, string> = { Accept: "application/json" };
    let sentMinLsn: string | null = null;
    if (method === "GET") {
      sentMinLsn = this.lsn.get();
      if (sentMinLsn !== null) headers["X-Min-LSN"] = sentMinLsn;
    }
    const init: RequestInit = {
      method,
      headers,
      credentials: "same-origin",
      cache: "no-store",
    };
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    if (options.signal !== undefined) init.signal = options.signal;

    let response: Response;
    try {
      response = await this.callFetch(path, init);
    } catch (exc) {
      if (isAbort(exc)) throw exc;
      const info = this.emptyInfo(method, path, sentMinLsn);
      this.emitResponse(info);
      const detail = exc instanceof Error ? exc.message : String(exc);
      throw new ApiError(null, "network_error", `The API could not be reached (${detail}).`, null, null, info);
    }

    const info = readInfo(method, path, response, sentMinLsn, new Date(this.now()));
    if (info.commitLsn !== null) this.lsn.observe(info.commitLsn);
    this.emitResponse(info);

    const text = await response.text();
    if (!response.ok) throw errorFrom(response, text, info, this.now());
    if (response.status === 204 || text === "") return { data: null as T, info };
    try {
      return { data: JSON.parse(text) as T, info };
    } catch {
      throw new ApiError(
        response.status,
        "bad_response",
        `The API answered ${response.status} with a body that is not JSON.`,
        null,
        null,
        info,
      );
    }
  }

  private callFetch(path: string, init: RequestInit): Promise<Response> {
    if (this.fetchImpl !== undefined) return this.fetchImpl(path, init);
    return globalThis.fetch(path, init);
  }

  private emptyInfo(method: string, path: string, sentMinLsn: string | null): ResponseInfo {
    return {
      method,
      path,
      status: null,
      servedBy: null,
      region: null,
      instance: null,
      dbRole: null,
      commitLsn: null,
      sentMinLsn,
      at: new Date(this.now()),
    };
  }

  private emitResponse(info: ResponseInfo): void {
    for (const listener of this.responseListeners) listener(info);
  }

  private emitRetry(id: number, notice: RetryNotice | null): void {
    for (const listener of this.retryListeners) listener(id, notice);
  }
}

function themePath(id: number): string {
  return `${API_BASE}/themes/${encodeURIComponent(String(id))}`;
}

/** `X-Served-By: region/instance` split at the first slash. */
export function parseServedBy(value: string | null): { region: string | null; instance: string | null } {
  if (value === null || value.trim() === "") return { region: null, instance: null };
  const text = value.trim();
  const slash = text.indexOf("/");
  if (slash < 0) return { region: text, instance: null };
  return { region: text.slice(0, slash) || null, instance: text.slice(slash + 1) || null };
}

/** The headers of a response that the UI shows. */
export function readInfo(
  method: string,
  path: string,
  response: Response,
  sentMinLsn: string | null,
  at: Date,
): ResponseInfo {
  const servedBy = response.headers.get("X-Served-By");
  const { region, instance } = parseServedBy(servedBy);
  const role = response.headers.get("X-DB-Role");
  const commit = response.headers.get("X-Commit-LSN");
  return {
    method,
    path,
    status: response.status,
    servedBy: servedBy === null ? null : servedBy.trim(),
    region,
    instance,
    dbRole: role === null || role.trim() === "" ? null : role.trim().toLowerCase(),
    commitLsn: commit === null ? null : normalizeLsn(commit),
    sentMinLsn,
    at,
  };
}

/**
 * `Retry-After` in whole seconds: delta-seconds, or an HTTP date relative to `now`.
 * `null` if absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return parseInt(text, 10);
  if (!/^[A-Za-z]{3},? /.test(text)) return null; // an HTTP date starts with the day's name
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

/** How long a read waits before its next try. */
export function retryDelayS(retryAfterS: number | null): number {
  const seconds = retryAfterS ?? DEFAULT_RETRY_DELAY_S;
  return Math.min(MAX_RETRY_DELAY_S, Math.max(1, seconds));
}

/** An `ApiError` from a non-2xx response: the API's error body if it has one. */
export function errorFrom(response: Response, text: string, info: ResponseInfo, now: number): ApiError {
  const retryAfterS = parseRetryAfter(response.headers.get("Retry-After"), now);
  const body = parseErrorBody(text);
  if (body !== null) {
    return new ApiError(response.status, body.code, body.message, body.field, retryAfterS, info);
  }
  const reason = response.statusText ? ` ${response.statusText}` : "";
  const who = info.servedBy === null ? "the web server" : info.servedBy;
  return new ApiError(
    response.status,
    `http_${response.status}`,
    `HTTP ${response.status}${reason} from ${who}.`,
    null,
    retryAfterS,
    info,
  );
}

/** `{"error": {"code", "field", "message"}}`, or `null` if `text` is not that. */
export function parseErrorBody(text: string): { code: string; field: string | null; message: string } | null {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof data !== "object" || data === null) return null;
  const error = (data as { error?: unknown }).error;
  if (typeof error !== "object" || error === null) return null;
  const { code, field, message } = error as { code?: unknown; field?: unknown; message?: unknown };
  if (typeof code !== "string" || typeof message !== "string") return null;
  return { code, field: typeof field === "string" ? field : null, message };
}

export function isAbort(exc: unknown): boolean {
  return typeof exc === "object" && exc !== null && (exc as { name?: unknown }).name === "AbortError";
}

/** `setTimeout` as a promise that rejects with an AbortError when `signal` fires. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError());
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError());
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function abortError(): Error {
  const error = new Error("aborted");
  error.name = "AbortError";
  return error;
}
