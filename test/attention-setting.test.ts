// ATTENTION_PRECISION through the production loading code: what each setting runs on this CPU and build (worked out
// from /proc/cpuinfo and the NATIVE_CPU flavour, test/helpers/cpu-kernels.ts, not from what ran), what the service
// says ran (the start-up log and the ReadyService that /health reads), and the warning when int16 was asked for
// where it does not exist (int16 and bf16 are never both in one build).
import type { FastifyBaseLogger } from "fastify";
import t, { type Test } from "tap";
import { loadConfig } from "../src/config/load.js";
import { Metrics } from "../src/metrics/metrics.js";
import { loadService } from "../src/service/load.js";
import { expectedCpuKernels } from "./helpers/cpu-kernels.js";
import { TINY_HEAD64, testModel } from "./helpers/models.js";
import { nativeAddonOrSkip } from "./helpers/native.js";

interface Line {
  readonly level: "info" | "warn";
  readonly fields: Record<string, unknown>;
  readonly msg: string;
}

/** A logger that keeps info and warn lines (pino's call shapes: (fields, msg) or (msg)). */
function recordingLogger(lines: Line[]): FastifyBaseLogger {
  const record = (level: Line["level"]) => (a: unknown, b?: unknown) =>
    lines.push(typeof a === "string" ? { level, fields: {}, msg: a } : { level, fields: a as Record<string, unknown>, msg: String(b) });
  const logger = { level: "info", info: record("info"), warn: record("warn"), error() {}, fatal() {}, debug() {}, trace() {}, silent() {} };
  return { ...logger, child: () => logger } as unknown as FastifyBaseLogger;
}

async function load(t: Test, engine: string, fileType: "q8_0" | "f32", setting: string | undefined, lines: Line[]) {
  const modelPath = await testModel({ ...TINY_HEAD64, fileType });
  const env = { EMBEDDING_MODEL: modelPath, DEVICE: "cpu", ENGINE: engine, M3_HEADS: "none", ...(setting ? { ATTENTION_PRECISION: setting } : {}) };
  const service = await loadService(loadConfig(env, []), recordingLogger(lines), new Metrics());
  t.teardown(async () => {
    await service.scheduler.close();
    await service.embedder.dispose();
  });
  return service;
}

const loaded = (lines: Line[]) => lines.find((line) => line.msg === "model loaded");
const missingWarnings = (lines: Line[]) => lines.filter((line) => line.level === "warn" && / is not available here/.test(line.msg));

t.test("int16 asked for on an engine without it: one warning, and the log says what runs", async (t) => {
  const lines: Line[] = [];
  const service = await load(t, "node-llama-cpp", "q8_0", "int16", lines);
  t.equal(service.embedder.attentionPrecision, undefined, "node-llama-cpp does not choose");
  t.equal(service.attention, undefined, "nor does the service say it does");
  t.equal(missingWarnings(lines).length, 1);
  t.equal(loaded(lines)?.fields.attention, "engine default");
});

t.test("the native engine", async (t) => {
  const addon = nativeAddonOrSkip(t);
  if (!addon) return;
  const expected = expectedCpuKernels(addon);
  if (!expected) {
    t.plan(0, "which attention a build must have is known for Linux on x86 only");
    return;
  }
  const approx = expected.attention ?? "f32";
  t.comment(`a ${addon.build.cpu} build on this CPU has ${expected.attention ?? "no"} attention products besides f32`);

  const cases = [
    { fileType: "q8_0", setting: undefined, ran: approx, why: "the default (auto) on quantised weights: int16 or bf16 where the build has it" },
    { fileType: "f32", setting: undefined, ran: "f32", why: "the default (auto) on F32 weights: f32" },
    { fileType: "q8_0", setting: "f32", ran: "f32", why: "f32 asked for" },
    { fileType: "f32", setting: "int16", ran: approx === "int16" ? "int16" : "f32", why: "int16 asked for runs wherever the build has it" },
    { fileType: "f32", setting: "bf16", ran: approx === "bf16" ? "bf16" : "f32", why: "bf16 asked for runs wherever the build has it" },
  ] as const;
  for (const { fileType, setting, ran, why } of cases) {
    t.test(`${fileType} weights, ATTENTION_PRECISION=${setting ?? "(unset)"}: ${why}`, async (t) => {
      const lines: Line[] = [];
      const service = await load(t, "native", fileType, setting, lines);
      t.equal(service.embedder.attentionPrecision, ran);
      t.equal(service.attention, ran, "what /health reports");
      t.match(loaded(lines)?.fields, { attention: ran, attentionSetting: setting ?? "auto" }, "the start-up log");
      t.equal(missingWarnings(lines).length, setting !== undefined && setting !== ran ? 1 : 0, "warned only where what was asked for is missing");
    });
  }
});
