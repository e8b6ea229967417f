import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import t from "tap";
import { cgroupCpuLimit, physicalCores, resolveThreads } from "../src/engine/threads.js";

t.test("a cgroup CPU quota caps the default thread count", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "cpu-max-"));
  const file = path.join(dir, "cpu.max");
  writeFileSync(file, "250000 100000\n");
  t.equal(cgroupCpuLimit(file), 2, "2.5 CPUs round down to 2 threads: a third would be throttled");
  writeFileSync(file, "50000 100000\n");
  t.equal(cgroupCpuLimit(file), 1, "half a CPU still runs one thread");
  writeFileSync(file, "max 100000\n");
  t.equal(cgroupCpuLimit(file), undefined, "no quota");
  t.equal(cgroupCpuLimit(path.join(dir, "missing")), undefined, "no cgroup v2");
});

t.test("THREADS>0 is taken as given; 0 means physical cores within the quota", async (t) => {
  t.equal(resolveThreads(7), 7);
  const auto = resolveThreads(0);
  t.ok(auto >= 1 && auto <= physicalCores());
});
