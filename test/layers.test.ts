import path from "node:path";
import t from "tap";
import { layerViolations, readSources } from "../scripts/layers.js";

t.test("no folder of src/ imports one above it", async (t) => {
  const files = readSources(path.join(import.meta.dirname, "..", "src"));
  t.ok(files.length > 40, `${files.length} source files read`);
  t.same(layerViolations(files), []);
});

t.test("the rule catches an import upwards, out of src/, and from a folder it does not know", async (t) => {
  t.same(layerViolations([{ path: "engine/scheduler.ts", text: 'import { x } from "../http/errors.js";' }]), [
    "engine/scheduler.ts: engine imports http (../http/errors.js), a folder above it",
  ]);
  t.same(layerViolations([{ path: "model/reference.ts", text: 'import type { Config } from "../config/load.js";\nconst m = await import("../embedding/x.js");' }]).length, 2);
  t.match(layerViolations([{ path: "embedding/a.ts", text: 'export { b } from "../../scripts/b.js";' }]), [/outside src/]);
  t.match(layerViolations([{ path: "plugins/a.ts", text: 'import "./b.js";' }]), [/plugins has no place/]);
  t.same(layerViolations([{ path: "http/routes/a.ts", text: 'import { p } from "../../embedding/pipeline.js";\nimport fastify from "fastify";' }]), []);
});
