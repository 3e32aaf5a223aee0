// src/api.gen.ts is what openapi-typescript makes of docs/openapi.json today. When the server's
// contract changes, regenerate it: `npm run generate` in clients/js (after
// `UPDATE_OPENAPI=1 cargo test --lib openapi`), and commit both.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

test("src/api.gen.ts is generated from the current docs/openapi.json", () => {
  const require = createRequire(import.meta.url);
  const cli = join(dirname(require.resolve("openapi-typescript/package.json")), "bin/cli.js");
  const dir = mkdtempSync(join(tmpdir(), "cyberhub-client-gen-"));
  try {
    const fresh = join(dir, "api.gen.ts");
    execFileSync(process.execPath, [cli, join(root, "../../docs/openapi.json"), "-o", fresh], { cwd: root, stdio: "pipe" });
    const committed = readFileSync(join(root, "src/api.gen.ts"), "utf8");
    assert.ok(
      committed === readFileSync(fresh, "utf8"),
      "clients/js/src/api.gen.ts is stale: run `npm run generate` in clients/js and commit it",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("dist/fair-verify.js is docs/fair-verify.js, unchanged", () => {
  const built = readFileSync(join(root, "dist/fair-verify.js"), "utf8");
  assert.equal(built, readFileSync(join(root, "../../docs/fair-verify.js"), "utf8"), "rebuild: npm run build");
});
