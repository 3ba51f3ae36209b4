// Parse and validate an AsyncAPI document with the AsyncAPI parser (errors fail; warnings are
// reported). Usage: node check_asyncapi.mjs schemas/asyncapi.yaml
import { readFileSync } from "node:fs";
import { Parser, fromFile } from "@asyncapi/parser";

const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, process.argv[2]).parse();
const errors = diagnostics.filter((d) => d.severity === 0);
const report = {
  validator: "@asyncapi/parser",
  version: document ? document.version() : null,
  channels: document ? document.channels().length : 0,
  operations: document ? document.operations().length : 0,
  messages: document ? document.allMessages().length : 0,
  // What each message's payload resolved to (the $ref'd JSON Schema): its required members.
  payloads: document
    ? Object.fromEntries(document.allMessages().all().map((m) => [m.id(), m.payload()?.required() ?? null]))
    : {},
  errors: errors.map((d) => ({ code: d.code, message: d.message, path: d.path })),
  warnings: diagnostics.filter((d) => d.severity === 1).map((d) => ({ code: d.code, message: d.message, path: d.path })),
};
console.log(JSON.stringify(report));
process.exitCode = document && errors.length === 0 ? 0 : 1;
