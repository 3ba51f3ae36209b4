// Validate an OpenAPI document with @apidevtools/swagger-parser: the OpenAPI 3.1 schema, and
// every $ref resolved (the JSON Schemas beside it). Usage: node check_openapi.mjs schemas/openapi.yaml
// Prints one JSON report; exit 0 when valid.
import SwaggerParser from "@apidevtools/swagger-parser";

const report = { validator: "@apidevtools/swagger-parser", errors: [] };
try {
  const api = await SwaggerParser.validate(process.argv[2]);
  report.openapi = api.openapi;
  report.paths = Object.keys(api.paths);
  const ok = api.paths["/v1/users/{user_id}/recommendations"]?.get?.responses?.["200"];
  // The list schema, dereferenced from ./json/recs_updated.v1.json: its required members.
  report.list_required = ok?.content?.["application/json"]?.schema?.required ?? null;
} catch (err) {
  report.errors.push(String(err.message || err));
}
console.log(JSON.stringify(report));
process.exitCode = report.errors.length ? 1 : 0;
