import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import { ApiError, type Theme, type ThemeInput } from "./api";
import {
  CONFIG_MAX_BYTES,
  formatConfig,
  jsonBytes,
  validateConfigText,
  validateName,
} from "./config";
import { ErrorNotice } from "./Notices";

export const DEFAULT_CONFIG = `{
  "primary": "#2563eb",
  "background": "#ffffff",
  "text": "#111827"
}`;

interface FieldErrors {
  name?: string;
  config?: string;
  /** An error the API named no known field for. */
  other?: string;
}

interface Props {
  /** The theme being edited, or `null` to create one. */
  editing: Theme | null;
  /** Save the theme; rejects with `ApiError`. Resolves once the parent has taken the result. */
  onSave: (input: ThemeInput) => Promise<void>;
  onCancel: () => void;
}

/** Create or edit a theme: name and a JSON config, checked here before the API sees them. */
export function ThemeForm({ editing, onSave, onCancel }: Props) {
  const ids = useId();
  const [name, setName] = useState(editing?.name ?? "");
  const [configText, setConfigText] = useState(
    editing === null ? DEFAULT_CONFIG : formatConfig(editing.config),
  );
  const [errors, setErrors] = useState<FieldErrors>({});
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const nameRef = useRef<HTMLInputElement>(null);
  const configRef = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    if (editing !== null) nameRef.current?.focus();
  }, [editing]);

  const size = configSize(configText);
  const verb = editing === null ? "creating the theme" : `saving theme #${editing.id}`;

  async function submit(event?: FormEvent): Promise<void> {
    event?.preventDefault();
    if (busy) return;
    const checkedName = validateName(name);
    const checkedConfig = validateConfigText(configText);
    const found: FieldErrors = {};
    if (!checkedName.ok) found.name = checkedName.error;
    if (!checkedConfig.ok) found.config = checkedConfig.error;
    setErrors(found);
    setFailure(null);
    if (!checkedName.ok || !checkedConfig.ok) {
      (checkedName.ok ? configRef : nameRef).current?.focus();
      return;
    }
    setBusy(true);
    try {
      await onSave({ name: checkedName.value, config: checkedConfig.value });
      if (editing === null) {
        setName("");
        setConfigText(DEFAULT_CONFIG);
      }
    } catch (exc) {
      if (!(exc instanceof ApiError)) throw exc;
      if (exc.field === "name") {
        setErrors({ name: exc.message });
        nameRef.current?.focus();
      } else if (exc.field === "config") {
        setErrors({ config: exc.message });
        configRef.current?.focus();
      } else if (exc.field !== null) {
        setErrors({ other: `${exc.field}: ${exc.message}` });
      } else {
        setFailure(exc);
      }
    } finally {
      setBusy(false);
    }
  }

  const nameErrorId = `${ids}-name-error`;
  const configErrorId = `${ids}-config-error`;
  const configHintId = `${ids}-config-hint`;

  return (
    <form
      className="card theme-form"
      onSubmit={(event) => void submit(event)}
      noValidate
      aria-labelledby={`${ids}-title`}
      aria-busy={busy}
      data-testid="theme-form"
      data-mode={editing === null ? "create" : "edit"}
    >
      <h2 id={`${ids}-title`}>
        {editing === null ? "New theme" : `Edit theme #${editing.id}`}
      </h2>

      <div className="field">
        <label htmlFor={`${ids}-name`}>Name</label>
        <input
          id={`${ids}-name`}
          ref={nameRef}
          type="text"
          autoComplete="off"
          value={name}
          onChange={(event) => setName(event.target.value)}
          aria-invalid={errors.name !== undefined}
          aria-describedby={errors.name !== undefined ? nameErrorId : undefined}
          data-testid="theme-name-input"
        />
        {errors.name !== undefined && (
          <p id={nameErrorId} className="field-error" data-testid="name-error">
            {errors.name}
          </p>
        )}
      </div>

      <div className="field">
        <label htmlFor={`${ids}-config`}>Config (JSON object)</label>
        <textarea
          id={`${ids}-config`}
          ref={configRef}
          rows={10}
          spellCheck={false}
          value={configText}
          onChange={(event) => setConfigText(event.target.value)}
          aria-invalid={errors.config !== undefined}
          aria-describedby={
            errors.config !== undefined ? `${configErrorId} ${configHintId}` : configHintId
          }
          data-testid="theme-config-input"
        />
        <p id={configHintId} className={size !== null && size > CONFIG_MAX_BYTES ? "hint over" : "hint"}>
          {size === null ? "Not valid JSON yet" : `${size} of ${CONFIG_MAX_BYTES} bytes`} · must
          be a JSON object
        </p>
        {errors.config !== undefined && (
          <p id={configErrorId} className="field-error" data-testid="config-error">
            {errors.config}
          </p>
        )}
      </div>

      {errors.other !== undefined && (
        <p className="field-error" role="alert" data-testid="form-error">
          {errors.other}
        </p>
      )}
      {failure !== null && (
        <ErrorNotice
          error={failure}
          action={verb}
          write
          onRetry={retryable(failure) ? () => void submit() : undefined}
          testId="form-error"
        />
      )}

      <div className="actions">
        <button type="submit" className="button primary" disabled={busy} data-testid="theme-submit">
          {busy ? "Saving…" : editing === null ? "Create theme" : "Save changes"}
        </button>
        {editing !== null && (
          <button type="button" className="button" onClick={onCancel} disabled={busy}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

function configSize(text: string): number | null {
  try {
    return jsonBytes(JSON.parse(text));
  } catch {
    return null;
  }
}

/** Worth a retry button: temporary (failover, unreachable) or a server error. */
function retryable(error: ApiError): boolean {
  return error.temporary || (error.status !== null && error.status >= 500);
}
