// Prints the gzip size of the app shell (index.html + JS + CSS; icons and fonts excluded: system fonts).
//   node scripts/size.mjs        (after npm run build)
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const DIST = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");
const build = JSON.parse(readFileSync(join(DIST, "build.json"), "utf8"));
const files = ["/index.html", build.js, build.css, "/sw.js", "/manifest.webmanifest"];
let raw = 0;
let gz = 0;
for (const f of files) {
  const data = readFileSync(join(DIST, f));
  const z = gzipSync(data, { level: 9 }).length;
  raw += data.length;
  gz += z;
  console.log(`${f.padEnd(34)} ${String(data.length).padStart(8)} B  ${String(z).padStart(7)} B gzip`);
}
const kb = (n) => (n / 1024).toFixed(1);
console.log(`app shell total: ${kb(raw)} KB raw, ${kb(gz)} KB gzip (budget 150 KB gzip)`);
if (gz > 150 * 1024) {
  console.error("over the 150 KB gzip budget");
  process.exit(1);
}
