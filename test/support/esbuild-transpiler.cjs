// tap runs each test file through ts-node (@tapjs/typescript). This makes ts-node transpile with esbuild,
// as tsx does for the server itself: the same output, at a fraction of the TypeScript compiler's cost
// (~3 s of CPU less per test file that loads the server on 2 cores). Types are checked by `npm run typecheck`.
// Named in tsconfig.json's "ts-node" section.
const { transformSync } = require("esbuild");

/** ts-node's custom transpiler interface: `create` returns `transpile(source, { fileName })`. */
exports.create = ({ nodeModuleEmitKind }) => ({
  transpile(input, { fileName }) {
    const { code, map } = transformSync(input, {
      loader: fileName.endsWith("x") ? "tsx" : "ts",
      format: nodeModuleEmitKind === "nodecjs" || fileName.endsWith(".cts") ? "cjs" : "esm",
      target: "es2022",
      sourcefile: fileName,
      sourcemap: "external",
    });
    return { outputText: code, sourceMapText: map };
  },
});
