/** Client-side checks that mirror the API's (app/api/validation.py), so most
 * mistakes are caught before a request. The API stays the authority. */

export const NAME_MAX_CHARS = 100;
export const CONFIG_MAX_BYTES = 16 * 1024;

export type ThemeConfig = Record<string, unknown>;

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

/** Size of `value` as compact JSON in UTF-8 bytes (how the API measures it). */
export function jsonBytes(value: unknown): number {
  return new TextEncoder().encode(JSON.stringify(value)).length;
}

/** The config textarea: must parse to a JSON object of at most 16 KiB (compact). */
export function validateConfigText(text: string): Checked<ThemeConfig> {
  if (text.trim() === "") {
    return { ok: false, error: "Config is required: a JSON object such as {}." };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (exc) {
    const detail = exc instanceof Error ? exc.message : String(exc);
    return { ok: false, error: `Config is not valid JSON: ${detail}` };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return { ok: false, error: `Config must be a JSON object ({…}), not ${describe(parsed)}.` };
  }
  if (containsNul(parsed)) {
    return { ok: false, error: "Config strings must not contain NUL (\\u0000) characters." };
  }
  const size = jsonBytes(parsed);
  if (size > CONFIG_MAX_BYTES) {
    return {
      ok: false,
      error: `Config is ${size} bytes as compact JSON; the limit is ${CONFIG_MAX_BYTES} bytes (16 KiB).`,
    };
  }
  return { ok: true, value: parsed as ThemeConfig };
}

/** The name input: 1..100 characters (Unicode code points, as the API counts). */
export function validateName(name: string): Checked<string> {
  const length = [...name].length;
  if (length === 0) return { ok: false, error: "Name is required." };
  if (length > NAME_MAX_CHARS) {
    return {
      ok: false,
      error: `Name is ${length} characters; the limit is ${NAME_MAX_CHARS}.`,
    };
  }
  if (name.includes("\u0000")) return { ok: false, error: "Name must not contain NUL characters." };
  return { ok: true, value: name };
}

/** Pretty JSON for the textarea. */
export function formatConfig(config: ThemeConfig): string {
  return JSON.stringify(config, null, 2);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}

function containsNul(value: unknown): boolean {
  if (typeof value === "string") return value.includes("\u0000");
  if (Array.isArray(value)) return value.some(containsNul);
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).some(([k, v]) => k.includes("\u0000") || containsNul(v));
  }
  return false;
}
