import type { ApiError, RetryNotice } from "./api";
import { temporaryReason } from "./format";
import { useCountdown } from "./hooks";

/** A read waiting to retry: "The database is failing over, retrying in 2 s". */
export function RetryBanner({ notice }: { notice: RetryNotice }) {
  const left = useCountdown(notice.until);
  const reason = temporaryReason(notice.error);
  return (
    <div className="notice notice-warn" role="status" data-testid="retry-banner">
      <strong>{capitalize(reason)}, retrying in {left} s</strong>{" "}
      <span className="muted">
        (retry {notice.retry} of {notice.maxRetries} for {notice.method} {notice.path})
      </span>
      <div className="muted small">{notice.error.message}</div>
    </div>
  );
}

/**
 * An error after all automatic retries (reads) or at once (writes), with a retry
 * button. For a failed write it says plainly that the change was not confirmed.
 */
export function ErrorNotice({
  error,
  action,
  write,
  onRetry,
  testId,
}: {
  error: ApiError;
  action: string;
  write: boolean;
  onRetry?: (() => void) | undefined;
  testId?: string;
}) {
  const until = error.retryAfterS === null ? null : error.info.at.getTime() + error.retryAfterS * 1000;
  const left = useCountdown(until);
  let headline: string;
  if (error.temporary) {
    const reason = capitalize(temporaryReason(error));
    headline = write
      ? `${reason}: ${action} was not confirmed and was not retried automatically.`
      : `${reason}: ${action} failed after retrying.`;
  } else {
    headline = `${capitalize(action)} failed: ${error.message}`;
  }
  return (
    <div className="notice notice-error" role="alert" data-testid={testId ?? "error-notice"}>
      <strong>{headline}</strong>
      {error.temporary && <div className="small">{error.message}</div>}
      {error.status === 503 && error.retryAfterS !== null && (
        <div className="small">
          {left > 0 ? `The API suggests trying again in ${left} s.` : "You can try again now."}
        </div>
      )}
      {onRetry !== undefined && (
        <button type="button" className="button" onClick={onRetry} data-testid="retry-button">
          Retry
        </button>
      )}
    </div>
  );
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
