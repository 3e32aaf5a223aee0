// Builds dist/: tsc (ESM + .d.ts), then docs/fair-verify.js copied unchanged beside dist/fair.js,
// which imports it (one verifier for the docs, players and front ends).
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
rmSync(join(root, "dist"), { recursive: true, force: true });
execFileSync(process.execPath, [tsc, "-p", root], { stdio: "inherit" });
mkdirSync(join(root, "dist"), { recursive: true });
copyFileSync(join(root, "../../docs/fair-verify.js"), join(root, "dist/fair-verify.js"));
