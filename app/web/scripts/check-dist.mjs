// After `vite build`: fail if dist/ would break under the production CSP
// (default-src 'self': no inline scripts or styles, no eval, no data: or
// external URLs) or if an asset is not content-hashed (Caddy caches /assets/* forever).
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join } from "node:path";

const dist = new URL("../dist/", import.meta.url).pathname;
const problems = [];
const fail = (message) => problems.push(message);

const indexPath = join(dist, "index.html");
if (!existsSync(indexPath)) {
  console.error("check-dist: dist/index.html is missing");
  process.exit(1);
}
const html = readFileSync(indexPath, "utf8");

for (const match of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
  if (!/\bsrc=/.test(match[1])) fail("index.html has an inline <script>");
  if (match[2].trim() !== "") fail("index.html has a <script> with content");
}
if (/<style\b/i.test(html)) fail("index.html has an inline <style>");
if (/\sstyle\s*=/i.test(html)) fail("index.html has a style= attribute");
if (/\son[a-z]+\s*=/i.test(html)) fail("index.html has an inline event handler attribute");
for (const match of html.matchAll(/\s(?:src|href)\s*=\s*"([^"]*)"/gi)) {
  const url = match[1];
  if (!url.startsWith("/assets/")) fail(`index.html references ${url} (expected /assets/...)`);
}

const hashed = /^[\w.-]+-[\w-]{8,}\.[a-z0-9]+$/i;
const assets = readdirSync(join(dist, "assets"));
for (const name of assets) {
  if (!hashed.test(name)) fail(`assets/${name} has no content hash in its name`);
  const text = readFileSync(join(dist, "assets", name), "utf8");
  if (name.endsWith(".js")) {
    if (/\beval\s*\(|\bnew\s+Function\s*\(/.test(text)) fail(`assets/${name} uses eval or new Function`);
  }
  if (name.endsWith(".css")) {
    if (/url\(\s*["']?data:/i.test(text)) fail(`assets/${name} has a data: URL`);
    if (/url\(\s*["']?(?:https?:)?\/\//i.test(text) || /@import/i.test(text)) {
      fail(`assets/${name} loads something from another origin`);
    }
  }
}
for (const name of readdirSync(dist)) {
  if (name !== "index.html" && name !== "assets") fail(`unexpected unhashed file dist/${name}`);
}

if (problems.length > 0) {
  for (const problem of problems) console.error(`check-dist: ${problem}`);
  process.exit(1);
}
console.log(`check-dist: index.html + ${assets.length} hashed assets, CSP-safe`);
