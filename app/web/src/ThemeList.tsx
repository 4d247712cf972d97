import { useEffect, useRef, useState } from "react";
import { ApiError, type ResponseInfo, type Theme } from "./api";
import { colourEntries, dateText, servedByText, timeText } from "./format";
import { ErrorNotice } from "./Notices";
import { ServedBy } from "./StatusBar";

/** One page of the list as it was loaded, and who served it. */
export interface ListLoad {
  page: number;
  count: number;
  info: ResponseInfo;
}

interface Props {
  items: Theme[];
  loads: ListLoad[];
  hasMore: boolean;
  loading: "first" | "more" | null;
  error: ApiError | null;
  editingId: number | null;
  onLoadMore: () => void;
  onReload: () => void;
  onEdit: (theme: Theme) => void;
  /** Deletes; rejects with `ApiError`. */
  onDelete: (theme: Theme) => Promise<void>;
}

export function ThemeList(props: Props) {
  const { items, loads, hasMore, loading, error, editingId } = props;
  return (
    <section className="card theme-list" aria-labelledby="themes-title" aria-busy={loading !== null}>
      <div className="list-head">
        <h2 id="themes-title">Themes</h2>
        <button
          type="button"
          className="button"
          onClick={props.onReload}
          disabled={loading !== null}
          data-testid="reload"
        >
          Reload
        </button>
      </div>

      {loads.length > 0 && (
        <ol className="loads" aria-label="List loads" data-testid="list-loads">
          {loads.map((load) => (
            <li key={load.page} data-testid="list-load" title={servedByText(load.info)}>
              <span className="load-page">page {load.page}</span>{" "}
              <span className="muted">({load.count} themes, {timeText(load.info.at)})</span>{" "}
              <ServedBy info={load.info} />
              {load.info.sentMinLsn !== null && (
                <span className="muted"> · sent X-Min-LSN {load.info.sentMinLsn}</span>
              )}
            </li>
          ))}
        </ol>
      )}

      {error !== null && (
        <ErrorNotice
          error={error}
          action="loading the themes"
          write={false}
          onRetry={loading === null ? props.onReload : undefined}
          testId="list-error"
        />
      )}

      {items.length === 0 && loading === null && error === null && (
        <p className="empty">No themes yet. Create one with the form.</p>
      )}

      <ul className="items">
        {items.map((theme) => (
          <ThemeItem
            key={theme.id}
            theme={theme}
            editing={theme.id === editingId}
            onEdit={props.onEdit}
            onDelete={props.onDelete}
          />
        ))}
      </ul>

      {loading !== null && (
        <p className="muted" role="status">
          {loading === "first" ? "Loading themes…" : "Loading more…"}
        </p>
      )}
      {hasMore && loading === null && (
        <button type="button" className="button" onClick={props.onLoadMore} data-testid="load-more">
          Load more
        </button>
      )}
    </section>
  );
}

function ThemeItem({
  theme,
  editing,
  onEdit,
  onDelete,
}: {
  theme: Theme;
  editing: boolean;
  onEdit: (theme: Theme) => void;
  onDelete: (theme: Theme) => Promise<void>;
}) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const keepRef = useRef<HTMLButtonElement>(null);
  const deleteRef = useRef<HTMLButtonElement>(null);
  const swatches = colourEntries(theme.config);
  const keys = Object.keys(theme.config);

  useEffect(() => {
    if (confirming) keepRef.current?.focus();
  }, [confirming]);

  function cancel(): void {
    setConfirming(false);
    setFailure(null);
    // Put focus back where the user started.
    requestAnimationFrame(() => deleteRef.current?.focus());
  }

  async function confirm(): Promise<void> {
    setBusy(true);
    setFailure(null);
    try {
      await onDelete(theme);
    } catch (exc) {
      if (!(exc instanceof ApiError)) throw exc;
      setFailure(exc);
    } finally {
      setBusy(false);
    }
  }

  return (
    <li
      className={`item ${editing ? "editing" : ""}`}
      data-testid="theme-item"
      data-theme-id={theme.id}
    >
      <div className="item-main">
        <div className="item-title">
          <span className="item-name" data-testid="theme-item-name">
            {theme.name}
          </span>{" "}
          <span className="muted">#{theme.id}</span>
          {editing && <span className="tag">editing</span>}
        </div>
        <div className="item-meta muted small">
          updated {dateText(theme.updated_at)} · {keys.length} {keys.length === 1 ? "key" : "keys"}
        </div>
        {swatches.length > 0 && (
          <div className="swatches">
            {swatches.map(([key, colour]) => (
              <span key={key} className="swatch" title={`${key}: ${colour}`}>
                <svg width="14" height="14" viewBox="0 0 14 14" aria-hidden="true" focusable="false">
                  <rect x="0.5" y="0.5" width="13" height="13" rx="3" fill={colour} stroke="currentColor" strokeOpacity="0.35" />
                </svg>
                <span className="small">{key}</span>
              </span>
            ))}
          </div>
        )}
      </div>

      {confirming ? (
        <div
          className="confirm"
          role="group"
          aria-label={`Confirm deleting ${theme.name}`}
          onKeyDown={(event) => {
            if (event.key === "Escape") cancel();
          }}
        >
          <span>Delete “{theme.name}”?</span>
          <button
            type="button"
            className="button danger"
            onClick={() => void confirm()}
            disabled={busy}
            data-testid="confirm-delete"
          >
            {busy ? "Deleting…" : "Delete"}
          </button>
          <button
            type="button"
            className="button"
            ref={keepRef}
            onClick={cancel}
            disabled={busy}
            data-testid="cancel-delete"
          >
            Keep
          </button>
        </div>
      ) : (
        <div className="item-actions">
          <button
            type="button"
            className="button"
            onClick={() => onEdit(theme)}
            aria-label={`Edit ${theme.name}`}
            data-testid="edit-button"
          >
            Edit
          </button>
          <button
            type="button"
            className="button"
            ref={deleteRef}
            onClick={() => setConfirming(true)}
            aria-label={`Delete ${theme.name}`}
            data-testid="delete-button"
          >
            Delete
          </button>
        </div>
      )}

      {failure !== null && (
        <div className="item-error">
          <ErrorNotice
            error={failure}
            action={`deleting “${theme.name}”`}
            write
            onRetry={failure.temporary ? () => void confirm() : undefined}
            testId="delete-error"
          />
        </div>
      )}
    </li>
  );
}
