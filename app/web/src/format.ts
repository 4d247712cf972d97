/** Text the UI shows about responses; pure, so unit tests cover it. */

import type { ResponseInfo } from "./api";

/** "served by chennai / chennai-api-2 · database: replica" */
export function servedByText(info: ResponseInfo): string {
  return `served by ${whoText(info)} · database: ${dbRoleText(info)}`;
}

/** `X-DB-Role`, or why there is none: "unavailable" on a 503, else "n/a". */
export function dbRoleText(info: ResponseInfo): string {
  if (info.dbRole !== null) return info.dbRole;
  return info.status === 503 ? "unavailable" : "n/a";
}

/** "chennai / chennai-api-2", or why nobody is named. */
export function whoText(info: ResponseInfo): string {
  if (info.status === null) return "nobody (the API could not be reached)";
  if (info.servedBy === null) return "unknown (no X-Served-By header)";
  if (info.instance === null) return info.region ?? info.servedBy;
  return `${info.region ?? "?"} / ${info.instance}`;
}

/** "GET /api/v1/themes → 200" */
export function requestText(info: ResponseInfo): string {
  const status = info.status === null ? "no answer" : String(info.status);
  return `${info.method} ${info.path} → ${status}`;
}

export function timeText(date: Date): string {
  const pad = (n: number): string => String(n).padStart(2, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** One of a few colour classes, stable per region name, so a change of region is visible. */
export function regionClass(region: string | null): string {
  if (region === null) return "region-none";
  let hash = 0;
  for (const ch of region) hash = (hash * 31 + (ch.codePointAt(0) ?? 0)) >>> 0;
  return `region-${hash % 6}`;
}

/** A short readable form of an ISO timestamp, in the user's locale. */
export function dateText(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString();
}

/** Colour-like string values of a config (for swatches): `#rgb`, `#rrggbb`, `#rrggbbaa`. */
export function colourEntries(config: Record<string, unknown>, limit = 8): [string, string][] {
  const out: [string, string][] = [];
  for (const [key, value] of Object.entries(config)) {
    if (typeof value === "string" && /^#(?:[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i.test(value)) {
      out.push([key, value]);
      if (out.length >= limit) break;
    }
  }
  return out;
}

/** Why a temporary failure happened, in plain words ("the database is failing over"). */
export function temporaryReason(error: { status: number | null; code: string }): string {
  if (error.status === null) return "the API could not be reached";
  if (error.status === 503 && error.code === "starting") return "the API is starting";
  if (error.status === 503) return "the database is failing over";
  return `the API is not answering (HTTP ${error.status})`;
}
