// Run the official AsyncAPI parser (@asyncapi/parser, pinned in package.json) over AsyncAPI documents.
//
//   node infra/node/asyncapi-validate.mjs FILE...
//
// Prints one JSON line per document: {"file", "version", "errors": [...], "warnings": [...], "infos": [...],
// "hints": [...]}, each diagnostic as {"code", "message", "path"}. Exits 0 when no document has an error or a
// warning, 1 when one has, 2 on bad usage or an unreadable file.
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

const SEVERITY = ["errors", "warnings", "infos", "hints"];

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node asyncapi-validate.mjs FILE...");
  process.exit(2);
}
const parser = new Parser();
let failed = false;
for (const file of files) {
  let text;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    console.error(`${file}: cannot read (${error.code ?? error.message})`);
    process.exit(2);
  }
  const { document, diagnostics } = await parser.parse(text, { source: file });
  const out = { file, version: document ? document.version() : null, errors: [], warnings: [], infos: [], hints: [] };
  for (const d of diagnostics) {
    out[SEVERITY[d.severity] ?? "errors"].push({ code: String(d.code), message: d.message, path: d.path.join("/") });
  }
  if (!document && out.errors.length === 0) {
    out.errors.push({ code: "no-document", message: "the parser returned no document", path: "" });
  }
  failed ||= out.errors.length > 0 || out.warnings.length > 0;
  console.log(JSON.stringify(out));
}
process.exit(failed ? 1 : 0);
