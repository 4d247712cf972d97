// Static renders (no DOM needed): the test hooks exist and nothing uses a style
// attribute, which the production CSP (style-src 'self') would block.
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { ApiClient, ApiError, type Theme } from "./api";
import { App } from "./App";
import { LsnStore } from "./lsnStore";
import { ErrorNotice, RetryBanner } from "./Notices";
import { StatusBar } from "./StatusBar";
import { responseInfo } from "./testing";
import { ThemeForm } from "./ThemeForm";
import { ThemeList } from "./ThemeList";

const INFO = responseInfo({ sentMinLsn: "0/3000148", at: new Date(2025, 0, 1, 12, 0, 1) });

const THEME: Theme = {
  id: 3,
  name: "Ocean <b>",
  config: { primary: "#0055ff", text: "#111" },
  created_at: "2025-01-01T00:00:00Z",
  updated_at: "2025-01-01T00:00:00Z",
};

function textOf(html: string): string {
  return html.replace(/<[^>]+>/g, "").replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">");
}

function noInlineStyles(html: string): void {
  expect(html).not.toMatch(/\sstyle=/);
}

describe("StatusBar", () => {
  it("says who served the last response, in one readable line", () => {
    const html = renderToStaticMarkup(<StatusBar info={INFO} lsnToken="0/3000148" onForgetToken={() => {}} />);
    expect(html).toContain('data-testid="served-by"');
    const line = /<p[^>]*data-testid="served-by-text"[^>]*>(.*?)<\/p>/.exec(html)?.[1] ?? "";
    expect(textOf(line)).toBe("served by chennai / chennai-api-2 · database: replica");
    expect(html).toContain('data-testid="lsn-token">0/3000148<');
    expect(textOf(html)).toContain("GET /api/v1/themes → 200 at 12:00:01");
    noInlineStyles(html);
  });

  it("before any response", () => {
    const html = renderToStaticMarkup(<StatusBar info={null} lsnToken={null} onForgetToken={() => {}} />);
    expect(textOf(html)).toContain("No response yet.");
    expect(textOf(html)).toContain("none yet");
  });
});

describe("ThemeForm", () => {
  it("has labelled, hooked fields", () => {
    const html = renderToStaticMarkup(<ThemeForm editing={null} onSave={async () => {}} onCancel={() => {}} />);
    for (const id of ["theme-form", "theme-name-input", "theme-config-input", "theme-submit"]) {
      expect(html).toContain(`data-testid="${id}"`);
    }
    const inputId = /<input[^>]*\sid="([^"]+)"/.exec(html)?.[1];
    expect(html).toContain(`<label for="${inputId}">Name</label>`);
    const areaId = /<textarea[^>]*\sid="([^"]+)"/.exec(html)?.[1];
    expect(html).toContain(`<label for="${areaId}">Config (JSON object)</label>`);
    expect(html).toContain('data-mode="create"');
    noInlineStyles(html);
  });

  it("fills in the theme being edited", () => {
    const html = renderToStaticMarkup(<ThemeForm editing={THEME} onSave={async () => {}} onCancel={() => {}} />);
    expect(html).toContain('data-mode="edit"');
    expect(html).toContain('value="Ocean &lt;b&gt;"');
    expect(html).toContain("&quot;primary&quot;: &quot;#0055ff&quot;");
    expect(textOf(html)).toContain("Save changes");
  });
});

describe("ThemeList", () => {
  it("renders items with hooks, and who served each page", () => {
    const html = renderToStaticMarkup(
      <ThemeList
        items={[THEME]}
        loads={[{ page: 1, count: 1, info: INFO }]}
        hasMore
        loading={null}
        error={null}
        editingId={null}
        onLoadMore={() => {}}
        onReload={() => {}}
        onEdit={() => {}}
        onDelete={async () => {}}
      />,
    );
    expect(html).toContain('data-testid="theme-item" data-theme-id="3"');
    expect(html).toContain("Ocean &lt;b&gt;"); // escaped, never HTML
    expect(html).toContain('data-testid="load-more"');
    expect(textOf(html)).toContain("page 1 (1 themes, 12:00:01) served by chennai / chennai-api-2 · database: replica");
    expect(html).toContain('fill="#0055ff"'); // swatch colours are SVG attributes, not styles
    noInlineStyles(html);
  });
});

describe("notices", () => {
  const failover = new ApiError(503, "database_unavailable", "no primary accepted the write within 3s", null, 2, INFO);

  it("says plainly that the database is failing over, and that a write was not retried", () => {
    const html = renderToStaticMarkup(<ErrorNotice error={failover} action="creating the theme" write onRetry={() => {}} />);
    expect(textOf(html)).toContain("The database is failing over: creating the theme was not confirmed");
    expect(html).toContain('data-testid="retry-button"');
    expect(html).toContain('role="alert"');
  });

  it("counts down a read retry", () => {
    const html = renderToStaticMarkup(
      <RetryBanner
        notice={{ requestId: 1, method: "GET", path: "/api/v1/themes", retry: 1, maxRetries: 4, delayS: 2, until: Date.now() + 2000, error: failover }}
      />,
    );
    expect(textOf(html)).toMatch(/The database is failing over, retrying in [12] s/);
  });
});

describe("App", () => {
  it("renders the whole page without touching the network", () => {
    const lsn = new LsnStore(null);
    const client = new ApiClient({
      lsn,
      fetch: () => Promise.reject(new Error("no network in a static render")),
    });
    const html = renderToStaticMarkup(<App client={client} lsn={lsn} />);
    expect(html).toContain('data-testid="served-by"');
    expect(html).toContain('data-testid="theme-form"');
    expect(textOf(html)).toContain("Loading themes…");
    noInlineStyles(html);
  });
});
