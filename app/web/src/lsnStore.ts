/**
 * The read-your-writes token: the highest commit LSN this tab has seen, kept in
 * sessionStorage (per tab, survives reloads) and sent as `X-Min-LSN` on reads.
 */

import { maxLsn, normalizeLsn } from "./lsn";

export const LSN_STORAGE_KEY = "geoha.minLsn";

/** The part of `Storage` the store uses (so tests can pass a plain object). */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

type Listener = () => void;

export class LsnStore {
  private current: string | null;
  private readonly listeners = new Set<Listener>();

  constructor(private readonly storage: KeyValueStorage | null) {
    this.current = normalizeLsn(safe(() => storage?.getItem(LSN_STORAGE_KEY) ?? "", ""));
  }

  /** The token to send, or `null` before the first write. */
  get(): string | null {
    return this.current;
  }

  /** Record an LSN from a write response; keeps the highest. Returns true if it moved. */
  observe(lsn: string | null | undefined): boolean {
    if (lsn === null || lsn === undefined) return false;
    const next = maxLsn(this.current, lsn);
    if (next === null || next === this.current) return false;
    this.current = next;
    safe(() => this.storage?.setItem(LSN_STORAGE_KEY, next), undefined);
    this.emit();
    return true;
  }

  /** Forget the token (for demos: shows what a replica serves without it). */
  clear(): void {
    if (this.current === null) return;
    this.current = null;
    safe(() => this.storage?.removeItem(LSN_STORAGE_KEY), undefined);
    this.emit();
  }

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  private emit(): void {
    for (const listener of this.listeners) listener();
  }
}

/** sessionStorage if the browser allows it (it can throw, e.g. storage disabled). */
export function browserSessionStorage(): KeyValueStorage | null {
  return safe(() => (typeof sessionStorage === "undefined" ? null : sessionStorage), null);
}

function safe<T>(action: () => T, fallback: T): T {
  try {
    return action();
  } catch {
    return fallback;
  }
}
