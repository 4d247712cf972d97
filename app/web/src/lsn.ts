/**
 * PostgreSQL WAL positions (LSNs) as the API sends them: `X/Y`, two hex numbers of
 * up to 32 bits each (e.g. `0/3000148`). They order by the high part, then the low
 * part, numerically: "0/A" > "0/9" and "1/0" > "0/FFFFFFFF", which string
 * comparison gets wrong.
 */

const LSN_PATTERN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export interface Lsn {
  readonly high: number;
  readonly low: number;
}

/** The parsed LSN, or `null` if `text` is not one. */
export function parseLsn(text: string): Lsn | null {
  const match = LSN_PATTERN.exec(text.trim());
  if (match === null) return null;
  return { high: parseInt(match[1] as string, 16), low: parseInt(match[2] as string, 16) };
}

export function isLsn(text: string): boolean {
  return parseLsn(text) !== null;
}

/** The canonical text form (upper-case hex, no leading zeros), as PostgreSQL prints it. */
export function formatLsn(lsn: Lsn): string {
  return `${lsn.high.toString(16).toUpperCase()}/${lsn.low.toString(16).toUpperCase()}`;
}

/** `text` in canonical form, or `null` if it is not an LSN. */
export function normalizeLsn(text: string): string | null {
  const lsn = parseLsn(text);
  return lsn === null ? null : formatLsn(lsn);
}

/** Negative, zero or positive as `a` is before, equal to or after `b`. Throws on a non-LSN. */
export function compareLsn(a: string, b: string): number {
  const x = parseLsn(a);
  const y = parseLsn(b);
  if (x === null) throw new RangeError(`not an LSN: ${JSON.stringify(a)}`);
  if (y === null) throw new RangeError(`not an LSN: ${JSON.stringify(b)}`);
  if (x.high !== y.high) return x.high < y.high ? -1 : 1;
  if (x.low !== y.low) return x.low < y.low ? -1 : 1;
  return 0;
}

/** The later of two LSNs (canonical form); `null`s and invalid values are ignored. */
export function maxLsn(a: string | null, b: string | null): string | null {
  const x = a === null ? null : normalizeLsn(a);
  const y = b === null ? null : normalizeLsn(b);
  if (x === null) return y;
  if (y === null) return x;
  return compareLsn(x, y) >= 0 ? x : y;
}
