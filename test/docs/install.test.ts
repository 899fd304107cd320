// Installing as the README says: the repository's npm calls carry no warning about unknown config, and a
// project beside it installs the packed package offline (npm registry cache only), with onnxruntime-node's
// CUDA download denied through allowScripts, then imports the API.
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { tempDir } from "../helpers/tmp.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const npm = (args: string[], cwd: string) => spawnSync("npm", args, { cwd, encoding: "utf8", env: { ...process.env, npm_config_update_notifier: "false" } });

it("npm in the repository warns about no unknown project config", () => {
  const r = npm(["--version"], ROOT);
  expect(r.status, r.stderr).toBe(0);
  expect(r.stderr).not.toContain("Unknown project config");
});

const hasAllowScripts = npm(["help", "install-scripts"], ROOT).status === 0;

(hasAllowScripts ? it : it.skip)(
  `a project installs the packed package and imports it, its CUDA download denied${hasAllowScripts ? "" : " [skipped: this npm has no allowScripts (npm 11.19+)]"}`,
  () => {
    const dir = tempDir("dlc-prune-install-");
    const pack = npm(["pack", "--ignore-scripts", "--pack-destination", dir], ROOT);
    expect(pack.status, pack.stderr).toBe(0);
    const tgz = readdirSync(dir).find((f) => f.endsWith(".tgz"))!;
    const project = join(dir, "project");
    mkdirSync(project);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "pipeline", private: true, type: "module", allowScripts: { "onnxruntime-node": false } }));
    const install = npm(["install", join(dir, tgz), "--prefer-offline", "--no-audit", "--no-fund"], project);
    expect(install.status, install.stderr).toBe(0);
    const use = spawnSync(process.execPath, ["--input-type=module", "-e", 'const m = await import("dlc-prune"); console.log(typeof m.run, typeof m.loadConfig)'], { cwd: project, encoding: "utf8" });
    expect(use.stdout.trim(), use.stderr).toBe("function function");
  },
  300_000,
);
