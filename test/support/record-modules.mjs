// `node --import ./test/support/record-modules.mjs ...`: appends the URL of every module the process's ESM
// loader resolves to $RECORD_MODULES_FILE, one a line (test/engine-modules.test.ts reads it).
import { register } from "node:module";

register("./record-modules-hooks.mjs", import.meta.url, { data: { file: process.env.RECORD_MODULES_FILE } });
