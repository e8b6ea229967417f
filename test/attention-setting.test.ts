// ATTENTION_PRECISION through the production loading code: the service says which attention runs, and warns
// when int16 was asked for where it does not exist (here: the node-llama-cpp engine, which has no such path).
import type { FastifyBaseLogger } from "fastify";
import t from "tap";
import { loadConfig } from "../src/config/load.js";
import { isNativeAddonAvailable } from "../src/engine/native/load-addon.js";
import { Metrics } from "../src/metrics/metrics.js";
import { loadService } from "../src/service/load.js";
import { TINY_HEAD64, testModel } from "./helpers/models.js";

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

async function load(engine: string, lines: Line[]) {
  const modelPath = await testModel({ ...TINY_HEAD64, fileType: "q8_0" });
  const config = loadConfig({ EMBEDDING_MODEL: modelPath, DEVICE: "cpu", ENGINE: engine, M3_HEADS: "none", ATTENTION_PRECISION: "int16" }, []);
  return loadService(config, recordingLogger(lines), new Metrics());
}

const loaded = (lines: Line[]) => lines.find((line) => line.msg === "model loaded");
const int16Warnings = (lines: Line[]) => lines.filter((line) => line.level === "warn" && line.msg.startsWith("ATTENTION_PRECISION=int16 is not available"));

t.test("int16 asked for on an engine without it: one warning, and the log says what runs", async (t) => {
  const lines: Line[] = [];
  const service = await load("node-llama-cpp", lines);
  t.teardown(async () => {
    await service.scheduler.close();
    await service.embedder.dispose();
  });
  t.equal(service.embedder.attentionPrecision, undefined, "node-llama-cpp does not choose");
  t.equal(int16Warnings(lines).length, 1);
  t.equal(loaded(lines)?.fields.attention, "engine default");
});

t.test("int16 asked for on the native engine: it runs where the build has it, and warns where not", { skip: !isNativeAddonAvailable() && "native addon not built" }, async (t) => {
  const lines: Line[] = [];
  const service = await load("native", lines);
  t.teardown(async () => {
    await service.scheduler.close();
    await service.embedder.dispose();
  });
  const ran = service.embedder.attentionPrecision;
  t.comment(`this build ran ${ran} attention`);
  t.equal(loaded(lines)?.fields.attention, ran);
  t.equal(int16Warnings(lines).length, ran === "int16" ? 0 : 1);
});
