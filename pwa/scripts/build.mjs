// Builds the PWA into pwa/dist: minified, content-hashed bundles, index.html, manifest, icons
// (drawn here, no downloaded artwork) and a service worker whose precache list and cache name carry
// the build's version.
//   node scripts/build.mjs            (GRIDAID_BASEMAP_URL=… sets a default basemap tile template)
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";
import * as esbuild from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DIST = join(ROOT, "dist");
const TARGET = ["es2019", "chrome64", "safari12", "firefox68"];
const THEME = "#b71c1c";
const VERSION_PLACEHOLDER = "__GRIDAID_BUILD_VERSION__";

rmSync(DIST, { recursive: true, force: true });
mkdirSync(join(DIST, "assets"), { recursive: true });
mkdirSync(join(DIST, "icons"), { recursive: true });

// --- icons: a white 3×3 grid on red, as PNG (tiny encoder) and SVG -------------------------------
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

function png(size, pixel) {
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0;
    for (let x = 0; x < size; x++) {
      const [r, g, b, a] = pixel(x / size, y / size);
      const o = y * (size * 4 + 1) + 1 + x * 4;
      raw[o] = r;
      raw[o + 1] = g;
      raw[o + 2] = b;
      raw[o + 3] = a;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8;
  ihdr[9] = 6; // RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw, { level: 9 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

const RED = [0xb7, 0x1c, 0x1c, 255];
const WHITE = [255, 255, 255, 255];
const CLEAR = [0, 0, 0, 0];

// The design lives in [inset, 1-inset]: a rounded square with a 3×3 grid and a marked cell.
function icon(inset, rounded) {
  return (u, v) => {
    if (rounded) {
      const r = 0.18;
      const cx = Math.min(Math.max(u, r), 1 - r);
      const cy = Math.min(Math.max(v, r), 1 - r);
      if ((u - cx) ** 2 + (v - cy) ** 2 > r * r) return CLEAR;
    }
    const span = 1 - 2 * inset;
    const x = (u - inset) / span;
    const y = (v - inset) / span;
    if (x < 0.18 || x > 0.82 || y < 0.18 || y > 0.82) return RED;
    const gx = (x - 0.18) / 0.64;
    const gy = (y - 0.18) / 0.64;
    const line = 0.045;
    const onLine = [0, 1 / 3, 2 / 3, 1].some((l) => Math.abs(gx - l) < line || Math.abs(gy - l) < line);
    if (onLine) return WHITE;
    if (gx > 1 / 3 && gx < 2 / 3 && gy > 1 / 3 && gy < 2 / 3) return WHITE; // the cell being visited
    return RED;
  };
}

const icons = [
  ["icons/icon-192.png", png(192, icon(0, true))],
  ["icons/icon-512.png", png(512, icon(0, true))],
  ["icons/maskable-512.png", png(512, icon(0.1, false))],
  ["icons/apple-touch-icon.png", png(180, icon(0, false))],
];
for (const [name, data] of icons) writeFileSync(join(DIST, name), data);
writeFileSync(
  join(DIST, "icons/icon.svg"),
  `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><rect width="100" height="100" rx="18" fill="${THEME}"/>` +
    `<g stroke="#fff" stroke-width="4.5" fill="none"><rect x="18" y="18" width="64" height="64"/><path d="M39.3 18v64M60.7 18v64M18 39.3h64M18 60.7h64"/></g>` +
    `<rect x="39.3" y="39.3" width="21.4" height="21.4" fill="#fff"/></svg>`,
);

// --- the app bundle ------------------------------------------------------------------------------
const result = await esbuild.build({
  entryPoints: { app: join(ROOT, "src/main.js") },
  bundle: true,
  minify: true,
  format: "iife",
  target: TARGET,
  outdir: join(DIST, "assets"),
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  loader: { ".png": "file", ".svg": "file" },
  metafile: true,
  legalComments: "none",
  sourcemap: false,
  define: {
    __APP_VERSION__: JSON.stringify(VERSION_PLACEHOLDER),
    __BASEMAP_URL__: JSON.stringify(process.env.GRIDAID_BASEMAP_URL || ""),
  },
  logLevel: "warning",
});

const outputs = Object.keys(result.metafile.outputs).map((p) => relative(DIST, join(process.cwd(), p)).split("\\").join("/"));
const js = outputs.find((p) => p.endsWith(".js"));
const css = outputs.find((p) => p.endsWith(".css"));

// The build id: a hash of everything the shell is made of.
const hash = createHash("sha256");
for (const p of outputs.sort()) hash.update(readFileSync(join(DIST, p)));
for (const [, data] of icons) hash.update(data);
const version = hash.digest("hex").slice(0, 12);
// Put the version into the bundle (it names the build in health reports); the file name stays.
const jsPath = join(DIST, js);
writeFileSync(jsPath, readFileSync(jsPath, "utf8").split(VERSION_PLACEHOLDER).join(version));

const manifest = {
  name: "网格救助",
  short_name: "网格救助",
  description: "网格员走访与救助任务（离线可用） · GridAid field app",
  lang: "zh-CN",
  dir: "ltr",
  id: "/",
  start_url: "/",
  scope: "/",
  display: "standalone",
  orientation: "portrait",
  background_color: "#ffffff",
  theme_color: THEME,
  icons: [
    { src: "/icons/icon-192.png", sizes: "192x192", type: "image/png", purpose: "any" },
    { src: "/icons/icon-512.png", sizes: "512x512", type: "image/png", purpose: "any" },
    { src: "/icons/maskable-512.png", sizes: "512x512", type: "image/png", purpose: "maskable" },
    { src: "/icons/icon.svg", sizes: "any", type: "image/svg+xml", purpose: "any" },
  ],
};
writeFileSync(join(DIST, "manifest.webmanifest"), JSON.stringify(manifest, null, 2));

const html = `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="theme-color" content="${THEME}">
<meta name="apple-mobile-web-app-capable" content="yes">
<meta name="mobile-web-app-capable" content="yes">
<meta name="apple-mobile-web-app-title" content="网格救助">
<meta name="gridaid-version" content="${version}">
<title>网格救助 GridAid</title>
<link rel="manifest" href="/manifest.webmanifest">
<link rel="icon" href="/icons/icon.svg" type="image/svg+xml">
<link rel="apple-touch-icon" href="/icons/apple-touch-icon.png">
<link rel="stylesheet" href="/${css}">
<script defer src="/${js}"></script>
</head>
<body>
<div id="app" data-testid="app"><p style="padding:1rem">网格救助 · 加载中… Loading…</p></div>
<noscript>请启用 JavaScript · Please enable JavaScript.</noscript>
</body>
</html>
`;
writeFileSync(join(DIST, "index.html"), html);

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? walk(full) : [full];
  });
}
const precache = [
  "/",
  "/index.html",
  "/manifest.webmanifest",
  ...walk(DIST)
    .map((p) => "/" + relative(DIST, p).split("\\").join("/"))
    .filter((p) => p.startsWith("/assets/") || p.startsWith("/icons/"))
    .sort(),
];

await esbuild.build({
  entryPoints: [join(ROOT, "src/sw.js")],
  bundle: true,
  minify: true,
  format: "iife",
  target: TARGET,
  outfile: join(DIST, "sw.js"),
  define: { __VERSION__: JSON.stringify(version), __PRECACHE__: JSON.stringify(precache) },
  legalComments: "none",
  logLevel: "warning",
});

writeFileSync(join(DIST, "build.json"), JSON.stringify({ version, js: `/${js}`, css: `/${css}`, precache }, null, 2));
console.log(`built pwa/dist version ${version}: /${js}, /${css}, ${precache.length} precached files`);
