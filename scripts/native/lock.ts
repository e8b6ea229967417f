// One build per build tree at a time (parallel installs, or several checkouts sharing the cache): a lock file
// holding the builder's pid, taken over when that process is gone.
import fs from "node:fs";
import path from "node:path";
import { log } from "./log.js";

/** Waits for the build tree's lock; resolves with its release. */
export async function lockBuildDir(buildDir: string): Promise<() => void> {
  const lockFile = `${buildDir}.lock`;
  fs.mkdirSync(path.dirname(lockFile), { recursive: true });
  let announced = false;
  for (;;) {
    try {
      fs.writeFileSync(lockFile, String(process.pid), { flag: "wx" });
      return () => fs.rmSync(lockFile, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const owner = Number(fs.readFileSync(lockFile, "utf8").trim());
    let alive = false;
    try {
      if (owner > 0) {
        process.kill(owner, 0);
        alive = true;
      }
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === "EPERM";
    }
    if (!alive) {
      fs.rmSync(lockFile, { force: true });
      continue;
    }
    if (!announced) {
      log(`waiting for another build of this configuration (pid ${owner}) to finish`);
      announced = true;
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}
