// Build the UI: bundle ui/src with esbuild into ui/dist (content-hashed names under assets/), then write the pages
// that load them. `node ui/build.mjs` (make setup runs it). The Function App serves ui/dist (blueprints/ui.py).
//
// MSAL is imported only where Entra ID sign-in is configured, so it lands in a chunk of its own that a local
// (development sign-in) page never loads.

import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const src = join(root, "ui", "src");
const dist = join(root, "ui", "dist");
const staging = join(root, "ui", "dist.tmp");

rmSync(staging, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { app: join(src, "main.js"), "auth-redirect": join(src, "auth-redirect.js") },
  outdir: join(staging, "assets"),
  entryNames: "[name]-[hash]",
  chunkNames: "chunk-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  minify: true,
  sourcemap: "linked",
  metafile: true,
  logLevel: "warning",
});

// What each entry point became, as paths under dist/ ("assets/app-ABCD1234.js").
const built = {};
for (const [file, meta] of Object.entries(result.metafile.outputs)) {
  if (!meta.entryPoint) continue;
  const name = relative(src, join(root, meta.entryPoint)).replace(/\.js$/, "").replace("main", "app");
  built[`${name}.js`] = relative(staging, join(root, file));
  if (meta.cssBundle) built[`${name}.css`] = relative(staging, join(root, meta.cssBundle));
}

for (const page of ["index.html", "auth.html"]) {
  const html = readFileSync(join(src, page), "utf8").replace(/\{\{([\w.-]+)\}\}/g, (_, key) => {
    if (!built[key]) throw new Error(`${page} names ${key}, which the build did not make`);
    return built[key];
  });
  writeFileSync(join(staging, page), html);
}
mkdirSync(staging, { recursive: true });
copyFileSync(join(src, "favicon.svg"), join(staging, "favicon.svg"));

rmSync(dist, { recursive: true, force: true });
renameSync(staging, dist);
console.log(`ui/dist: ${Object.values(built).join(", ")}`);
