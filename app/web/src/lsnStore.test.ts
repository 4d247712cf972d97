import { describe, expect, it } from "vitest";
import { LSN_STORAGE_KEY, LsnStore, type KeyValueStorage } from "./lsnStore";

function memoryStorage(initial: Record<string, string> = {}): KeyValueStorage & { data: Record<string, string> } {
  const data = { ...initial };
  return {
    data,
    getItem: (key) => data[key] ?? null,
    setItem: (key, value) => {
      data[key] = value;
    },
    removeItem: (key) => {
      delete data[key];
    },
  };
}

describe("LsnStore", () => {
  it("starts from sessionStorage, ignoring a bad value", () => {
    expect(new LsnStore(memoryStorage({ [LSN_STORAGE_KEY]: "0/abc" })).get()).toBe("0/ABC");
    expect(new LsnStore(memoryStorage({ [LSN_STORAGE_KEY]: "junk" })).get()).toBeNull();
    expect(new LsnStore(memoryStorage()).get()).toBeNull();
    expect(new LsnStore(null).get()).toBeNull();
  });

  it("keeps the highest LSN numerically and persists it", () => {
    const storage = memoryStorage();
    const store = new LsnStore(storage);
    expect(store.observe("0/A")).toBe(true);
    expect(store.observe("0/10")).toBe(true); // 0x10 > 0xA
    expect(store.observe("0/F")).toBe(false); // older: ignored
    expect(store.observe("0/10")).toBe(false);
    expect(store.get()).toBe("0/10");
    expect(storage.data[LSN_STORAGE_KEY]).toBe("0/10");
    expect(store.observe("1/0")).toBe(true);
    expect(storage.data[LSN_STORAGE_KEY]).toBe("1/0");
  });

  it("ignores missing and malformed values", () => {
    const store = new LsnStore(memoryStorage());
    expect(store.observe(null)).toBe(false);
    expect(store.observe(undefined)).toBe(false);
    expect(store.observe("not-an-lsn")).toBe(false);
    expect(store.get()).toBeNull();
  });

  it("notifies subscribers on change and on clear", () => {
    const storage = memoryStorage();
    const store = new LsnStore(storage);
    let calls = 0;
    const off = store.subscribe(() => calls++);
    store.observe("0/1");
    store.observe("0/1");
    store.clear();
    expect(calls).toBe(2);
    expect(storage.data[LSN_STORAGE_KEY]).toBeUndefined();
    off();
    store.observe("0/2");
    expect(calls).toBe(2);
  });

  it("still works in memory when storage throws", () => {
    const broken: KeyValueStorage = {
      getItem: () => {
        throw new Error("denied");
      },
      setItem: () => {
        throw new Error("quota");
      },
      removeItem: () => {
        throw new Error("denied");
      },
    };
    const store = new LsnStore(broken);
    expect(store.get()).toBeNull();
    expect(store.observe("0/5")).toBe(true);
    expect(store.get()).toBe("0/5");
    store.clear();
    expect(store.get()).toBeNull();
  });
});
