// Compile every JSON Schema with Ajv 8 (draft 2020-12, strict defaults) and validate documents.
// Usage: node check_ajv.mjs CASES.json   (CASES: {"schemas": {name: path}, "documents":
// [{"schema": name, "path": p, "valid": bool}]}). Prints one JSON report; exit 0 when every
// schema compiled without a strict-mode complaint and every document got its expected verdict.
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";

const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const problems = [];
const logger = {
  log: () => {},
  warn: (...args) => problems.push({ kind: "strict-warning", message: args.join(" ") }),
  error: (...args) => problems.push({ kind: "strict-error", message: args.join(" ") }),
};
const ajv = new Ajv2020({ logger }); // strict defaults: unknown keywords, formats, types...
const validators = {};
for (const [name, path] of Object.entries(cases.schemas)) {
  try {
    validators[name] = ajv.compile(JSON.parse(readFileSync(path, "utf8")));
  } catch (err) {
    problems.push({ kind: "compile", schema: name, message: String(err.message || err) });
  }
}
let checked = 0;
for (const doc of cases.documents) {
  const validate = validators[doc.schema];
  if (!validate) continue;
  const ok = validate(JSON.parse(readFileSync(doc.path, "utf8")));
  checked += 1;
  if (ok !== doc.valid) {
    problems.push({ kind: "verdict", path: doc.path, expected: doc.valid, errors: validate.errors });
  }
}
console.log(JSON.stringify({ validator: "ajv " + (await import("ajv/package.json", { with: { type: "json" } })).default.version, schemas: Object.keys(validators).length, documents: checked, problems }));
process.exitCode = problems.length ? 1 : 0; // not process.exit(): it would cut a long report short
