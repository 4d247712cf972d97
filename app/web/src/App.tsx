import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from "react";
import {
  ApiError,
  isAbort,
  type ApiClient,
  type ResponseInfo,
  type RetryNotice,
  type Theme,
  type ThemeInput,
} from "./api";
import { servedByText } from "./format";
import type { LsnStore } from "./lsnStore";
import { ErrorNotice, RetryBanner } from "./Notices";
import { StatusBar } from "./StatusBar";
import { ThemeForm } from "./ThemeForm";
import { ThemeList, type ListLoad } from "./ThemeList";

export const PAGE_SIZE = 20;
const MAX_PAGE = 100;

interface ListState {
  items: Theme[];
  nextCursor: string | null;
  loads: ListLoad[];
  loading: "first" | "more" | null;
  error: ApiError | null;
}

type Editing =
  | { id: number; theme: null; error: ApiError | null }
  | { id: number; theme: Theme; error: null };

const EMPTY_LIST: ListState = { items: [], nextCursor: null, loads: [], loading: "first", error: null };

export function App({ client, lsn }: { client: ApiClient; lsn: LsnStore }) {
  const token = useSyncExternalStore(lsn.subscribe, () => lsn.get(), () => lsn.get());
  const [last, setLast] = useState<ResponseInfo | null>(null);
  const [retries, setRetries] = useState<ReadonlyMap<number, RetryNotice>>(new Map());
  const [list, setList] = useState<ListState>(EMPTY_LIST);
  const [editing, setEditing] = useState<Editing | null>(null);
  const [flash, setFlash] = useState<string>("");
  const listRef = useRef(list);
  listRef.current = list;
  const listAbort = useRef<AbortController | null>(null);
  const editAbort = useRef<AbortController | null>(null);

  useEffect(() => {
    const offResponse = client.onResponse(setLast);
    const offRetry = client.onRetry((id, notice) =>
      setRetries((previous) => {
        const next = new Map(previous);
        if (notice === null) next.delete(id);
        else next.set(id, notice);
        return next;
      }),
    );
    return () => {
      offResponse();
      offRetry();
    };
  }, [client]);

  /** Load the list from the top (after a write: as many rows as are shown now). */
  const reload = useCallback(
    async (limit: number = PAGE_SIZE): Promise<void> => {
      listAbort.current?.abort();
      const abort = new AbortController();
      listAbort.current = abort;
      setList((previous) => ({ ...previous, loading: "first", error: null }));
      try {
        const { data, info } = await client.listThemes({ limit }, abort.signal);
        setList({
          items: data.items,
          nextCursor: data.next_cursor,
          loads: [{ page: 1, count: data.items.length, info }],
          loading: null,
          error: null,
        });
      } catch (exc) {
        if (isAbort(exc)) return;
        if (!(exc instanceof ApiError)) throw exc;
        setList((previous) => ({ ...previous, loading: null, error: exc }));
      }
    },
    [client],
  );

  const loadMore = useCallback(async (): Promise<void> => {
    const cursor = listRef.current.nextCursor;
    if (cursor === null || listRef.current.loading !== null) return;
    listAbort.current?.abort();
    const abort = new AbortController();
    listAbort.current = abort;
    setList((previous) => ({ ...previous, loading: "more", error: null }));
    try {
      const { data, info } = await client.listThemes({ limit: PAGE_SIZE, cursor }, abort.signal);
      setList((previous) => {
        const seen = new Set(previous.items.map((theme) => theme.id));
        return {
          items: [...previous.items, ...data.items.filter((theme) => !seen.has(theme.id))],
          nextCursor: data.next_cursor,
          loads: [...previous.loads, { page: previous.loads.length + 1, count: data.items.length, info }],
          loading: null,
          error: null,
        };
      });
    } catch (exc) {
      if (isAbort(exc)) return;
      if (!(exc instanceof ApiError)) throw exc;
      setList((previous) => ({ ...previous, loading: null, error: exc }));
    }
  }, [client]);

  useEffect(() => {
    void reload();
    return () => listAbort.current?.abort();
  }, [reload]);

  /** After a write: show the list again, as long as it is now (read-your-writes). */
  const refreshAfterWrite = useCallback((): void => {
    const shown = listRef.current.items.length;
    void reload(Math.min(MAX_PAGE, Math.max(PAGE_SIZE, shown)));
  }, [reload]);

  const startEdit = useCallback(
    async (id: number): Promise<void> => {
      editAbort.current?.abort();
      const abort = new AbortController();
      editAbort.current = abort;
      setEditing({ id, theme: null, error: null });
      try {
        // Read it fresh (with X-Min-LSN): the list row may be older than the theme.
        const { data } = await client.getTheme(id, abort.signal);
        setEditing({ id, theme: data, error: null });
      } catch (exc) {
        if (isAbort(exc)) return;
        if (!(exc instanceof ApiError)) throw exc;
        setEditing({ id, theme: null, error: exc });
      }
    },
    [client],
  );

  const cancelEdit = useCallback((): void => {
    editAbort.current?.abort();
    setEditing(null);
  }, []);

  const save = useCallback(
    async (input: ThemeInput): Promise<void> => {
      const target = editing?.theme ?? null;
      if (target === null) {
        const { data, info } = await client.createTheme(input);
        setFlash(`Created “${data.name}” (#${data.id}); ${writeText(info)}.`);
      } else {
        const { data, info } = await client.replaceTheme(target.id, input);
        setFlash(`Saved “${data.name}” (#${data.id}); ${writeText(info)}.`);
        setEditing(null);
      }
      refreshAfterWrite();
    },
    [client, editing, refreshAfterWrite],
  );

  const remove = useCallback(
    async (theme: Theme): Promise<void> => {
      try {
        const { info } = await client.deleteTheme(theme.id);
        setFlash(`Deleted “${theme.name}” (#${theme.id}); ${writeText(info)}.`);
      } catch (exc) {
        if (!(exc instanceof ApiError) || exc.status !== 404) throw exc;
        setFlash(`“${theme.name}” (#${theme.id}) was already deleted.`);
      }
      if (editing?.id === theme.id) cancelEdit();
      refreshAfterWrite();
    },
    [client, editing, cancelEdit, refreshAfterWrite],
  );

  const firstRetry = retries.values().next();

  return (
    <div className="app">
      <header className="app-header">
        <div className="title">
          <h1>geoha themes</h1>
          <p className="muted small">
            Active/active across regions — the bar shows who answered each request.
          </p>
        </div>
        <StatusBar info={last} lsnToken={token} onForgetToken={() => lsn.clear()} />
      </header>

      <div className="live" aria-live="polite" data-testid="flash">
        {flash}
      </div>
      {firstRetry.done ? null : <RetryBanner notice={firstRetry.value} />}

      <main className="layout">
        <div className="form-column">
          {editing !== null && editing.theme === null ? (
            <section className="card" aria-label={`Edit theme #${editing.id}`}>
              {editing.error === null ? (
                <p role="status">Loading theme #{editing.id}…</p>
              ) : (
                <ErrorNotice
                  error={editing.error}
                  action={`loading theme #${editing.id}`}
                  write={false}
                  onRetry={() => void startEdit(editing.id)}
                  testId="edit-error"
                />
              )}
              <button type="button" className="button" onClick={cancelEdit}>
                Cancel
              </button>
            </section>
          ) : (
            <ThemeForm
              key={editing?.theme ? `edit-${editing.theme.id}-${editing.theme.updated_at}` : "create"}
              editing={editing?.theme ?? null}
              onSave={save}
              onCancel={cancelEdit}
            />
          )}
        </div>
        <ThemeList
          items={list.items}
          loads={list.loads}
          hasMore={list.nextCursor !== null}
          loading={list.loading}
          error={list.error}
          editingId={editing?.id ?? null}
          onLoadMore={() => void loadMore()}
          onReload={() => void reload()}
          onEdit={(theme) => void startEdit(theme.id)}
          onDelete={remove}
        />
      </main>
    </div>
  );
}

function writeText(info: ResponseInfo): string {
  const lsn = info.commitLsn === null ? "no commit LSN" : `commit LSN ${info.commitLsn}`;
  return `${servedByText(info)} · ${lsn}`;
}
