// Builds the dashboard into dist/ (committed; the bosun binary embeds it):
// type-checks src/, bundles src/main.ts with esbuild into dist/assets/app.js,
// minifies static/app.css into dist/assets/app.css and copies
// static/index.html. The output is deterministic: the same sources and the
// pinned esbuild give the same bytes.
//
//   node build.mjs           rebuild dist/
//   node build.mjs --check   build into a temp dir; fail when dist/ differs
//   node build.mjs --test    type-check and bundle test/ into .test-build/

import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const mode = process.argv[2] ?? "";
if (!["", "--check", "--test"].includes(mode)) {
  console.error("usage: node build.mjs [--check|--test]");
  process.exit(2);
}

// The generated client code lives in clients/typescript/src/gen; its imports
// of the runtime packages resolve here, to this folder's pinned copies, so
// the bundle has one copy of each whatever else is installed.
const runtimeFromHere = {
  name: "runtime-from-dashboard",
  setup(build) {
    build.onResolve({ filter: /^@(bufbuild|connectrpc)\// }, (args) => {
      if (args.resolveDir.startsWith(here) && !args.resolveDir.includes("node_modules")) return undefined;
      if (args.pluginData === "redirected") return undefined;
      return build.resolve(args.path, { kind: args.kind, resolveDir: here, pluginData: "redirected" });
    });
  },
};

function typecheck(project) {
  execFileSync(process.execPath, [join(here, "node_modules/typescript/bin/tsc"), "-p", join(here, project)], { stdio: "inherit" });
}

async function build(out) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, "assets"), { recursive: true });
  const common = { absWorkingDir: here, bundle: true, minify: true, legalComments: "none", charset: "utf8", logLevel: "warning" };
  await esbuild.build({
    ...common,
    entryPoints: ["src/main.ts"],
    outfile: join(out, "assets/app.js"),
    format: "esm",
    target: ["es2022"],
    platform: "browser",
    plugins: [runtimeFromHere],
  });
  await esbuild.build({ ...common, entryPoints: ["static/app.css"], outfile: join(out, "assets/app.css") });
  copyFileSync(join(here, "static/index.html"), join(out, "index.html"));
}

function files(dir, prefix = "") {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name), `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`],
  ).sort();
}

if (mode === "--test") {
  typecheck("tsconfig.test.json");
  const out = join(here, ".test-build");
  rmSync(out, { recursive: true, force: true });
  const entryPoints = readdirSync(join(here, "test")).filter((name) => name.endsWith(".test.ts")).map((name) => `test/${name}`);
  await esbuild.build({
    absWorkingDir: here,
    entryPoints,
    outdir: out,
    bundle: true,
    format: "esm",
    platform: "node",
    target: ["node20"],
    packages: "external",
    plugins: [runtimeFromHere],
    logLevel: "warning",
  });
  process.exit(0);
}

typecheck("tsconfig.json");
if (mode === "") {
  await build(join(here, "dist"));
  console.log("build-dashboard: rebuilt dashboard/dist");
  process.exit(0);
}

const fresh = mkdtempSync(join(tmpdir(), "bosun-dashboard-"));
try {
  await build(fresh);
  const committed = join(here, "dist");
  const want = files(fresh);
  let have = [];
  try {
    have = files(committed);
  } catch {
    // No dist/ at all: stale.
  }
  const stale = [...new Set([...want, ...have])].filter(
    (name) => !want.includes(name) || !have.includes(name) || !readFileSync(join(fresh, name)).equals(readFileSync(join(committed, name))),
  );
  if (stale.length > 0) {
    console.error(`build-dashboard: dashboard/dist is stale (${stale.join(", ")}); run scripts/build-dashboard and commit the result`);
    process.exit(1);
  }
  console.log("build-dashboard: dashboard/dist is up to date");
} finally {
  rmSync(fresh, { recursive: true, force: true });
}
