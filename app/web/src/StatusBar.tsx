import type { ResponseInfo } from "./api";
import { dbRoleText, regionClass, requestText, timeText, whoText } from "./format";

interface Props {
  info: ResponseInfo | null;
  lsnToken: string | null;
  onForgetToken: () => void;
}

/** Who served the last response, and the read-your-writes token. */
export function StatusBar({ info, lsnToken, onForgetToken }: Props) {
  const region = info?.region ?? null;
  return (
    <section
      className={`status-bar ${regionClass(info === null ? null : region)}`}
      data-testid="served-by"
      aria-label="Last response"
    >
      <div className="status-region" aria-hidden="true">
        {info === null ? "…" : (region ?? "?")}
      </div>
      <div className="status-body">
        {info === null ? (
          <p className="status-line" data-testid="served-by-text">
            No response yet.
          </p>
        ) : (
          <p className="status-line" data-testid="served-by-text">
            <ServedBy info={info} />
          </p>
        )}
        <p className="status-detail">
          {info !== null && (
            <>
              <span data-testid="served-by-request">
                last request: {requestText(info)} at {timeText(info.at)}
              </span>
              <span className="sep" aria-hidden="true">
                {" · "}
              </span>
            </>
          )}
          <span>
            read-your-writes token (X-Min-LSN):{" "}
            <code data-testid="lsn-token">{lsnToken ?? "none yet"}</code>
          </span>
          {lsnToken !== null && (
            <button type="button" className="link-button" onClick={onForgetToken}>
              Forget token
            </button>
          )}
        </p>
      </div>
    </section>
  );
}

/** "served by chennai / chennai-api-2 · database: replica", with the parts marked up. */
export function ServedBy({ info }: { info: ResponseInfo }) {
  const role = info.dbRole;
  const who =
    info.servedBy !== null && info.status !== null ? (
      <>
        <strong data-testid="served-by-region">{info.region ?? "?"}</strong>
        {info.instance !== null && (
          <>
            {" / "}
            <strong data-testid="served-by-instance">{info.instance}</strong>
          </>
        )}
      </>
    ) : (
      <strong className="warn-text">{whoText(info)}</strong>
    );
  return (
    <>
      served by {who}
      {" · database: "}
      <strong data-testid="served-by-db-role" className={`role role-${role ?? "none"}`}>
        {dbRoleText(info)}
      </strong>
    </>
  );
}
