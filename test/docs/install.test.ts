// Installing as the README says, into a fresh project beside the repository, with npm 10 (Node.js 20's own)
// and npm 11, offline but for the npm registry (onnxruntime-node's CUDA download must be skipped, or the
// install fails), then running the README's library snippet in that project.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { alpacaRows, writeJsonl } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const readme = readFileSync(join(ROOT, "README.md"), "utf8");
const version = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
const tmp = tempDir("dlc-prune-install-");

/** The environment without what an npm that started this test passes on (its config, e.g. the repository's .npmrc keys). */
const cleanEnv = (path: string): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== "ONNXRUNTIME_NODE_INSTALL")),
  PATH: path,
  npm_config_update_notifier: "false",
});

/** npm 10, installed from the registry into a prefix of its own (the machine's npm may be 11). */
function npm10(): { bin: string } | { why: string } {
  const prefix = join(tmp, "npm10");
  const r = spawnSync("npm", ["install", "--global", "--prefix", prefix, "npm@10", "--no-audit", "--no-fund"], {
    encoding: "utf8",
    env: cleanEnv(process.env.PATH!),
  });
  return r.status === 0
    ? { bin: join(prefix, "bin") }
    : { why: `npm@10 could not be installed from the registry: ${r.stderr.trim().split("\n").at(-1)}` };
}

const npms: { name: string; bin: string | null; why?: string }[] = [{ name: "the machine's npm", bin: null }];
const ten = npm10();
npms.push("bin" in ten ? { name: "npm 10", bin: ten.bin } : { name: "npm 10", bin: null, why: ten.why });

/** The README's install block, for the tarball at `tgz`. */
function installBlock(tgz: string): string {
  const section = readme.slice(readme.indexOf("## Installing"), readme.indexOf("## GPU"));
  const block = /```bash\n([\s\S]*?)```/.exec(section)?.[1];
  expect(block).toContain("/path/to/dlc-prune-<version>.tgz");
  return block!.replace("/path/to/dlc-prune-<version>.tgz", tgz);
}

describe("installing the packed package into another project, as the README says", () => {
  let tgz: string;
  it("npm pack names the tarball after package.json's version", () => {
    const r = spawnSync("npm", ["pack", "--ignore-scripts", "--pack-destination", tmp], {
      cwd: ROOT,
      encoding: "utf8",
      env: cleanEnv(process.env.PATH!),
    });
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(tmp).filter((f) => f.endsWith(".tgz"))).toEqual([`dlc-prune-${version}.tgz`]);
    tgz = join(tmp, `dlc-prune-${version}.tgz`);
  });

  for (const npm of npms) {
    const skip = npm.why ? ` [skipped: ${npm.why}]` : "";
    (npm.why ? it.skip : it)(
      `with ${npm.name}: installs offline, the CLI and the README's library snippet run${skip}`,
      () => {
        const project = join(tmp, `project-${npms.indexOf(npm)}`);
        mkdirSync(project);
        writeFileSync(join(project, "package.json"), JSON.stringify({ name: "pipeline", private: true, type: "module" }));
        const env = cleanEnv(npm.bin ? `${npm.bin}:${process.env.PATH}` : process.env.PATH!);
        const which = spawnSync("npm", ["--version"], { cwd: project, encoding: "utf8", env });
        if (npm.bin) expect(which.stdout).toMatch(/^10\./);
        const install = spawnSync("bash", ["-euo", "pipefail", "-c", installBlock(tgz)], { cwd: project, encoding: "utf8", env });
        expect(install.status, install.stderr).toBe(0);
        expect(readFileSync(join(project, ".npmrc"), "utf8")).toContain("onnxruntime-node-install=skip");

        // The package's CLI builds a model folder; the README's snippet scores data with it and writes the outputs.
        const cli = spawnSync(join(project, "node_modules/.bin/dlc-prune"), ["model", "tiny", "--out", "models/my-model"], {
          cwd: project,
          encoding: "utf8",
          env,
        });
        expect(cli.status, cli.stderr).toBe(0);
        mkdirSync(join(project, "data"));
        writeJsonl(join(project, "data/train.jsonl"), alpacaRows(12));
        const snippet = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).find((code) => code.includes("loadConfig({"))!;
        writeFileSync(join(project, "pipeline.ts"), snippet);
        const ran = spawnSync(join(ROOT, "node_modules/.bin/tsx"), ["pipeline.ts"], { cwd: project, encoding: "utf8", env });
        expect(ran.status, ran.stderr).toBe(0);
        expect(ran.stdout).toMatch(/flexrand-0\.2\/train\.parquet: 2 rows.*flexrand-0\.3\/train\.parquet: 4 rows/s);
        for (const f of ["scores.arrow", "manifest.json", "report.html", "flexrand-0.3/train.parquet"])
          expect(existsSync(join(project, "out/pruned", f)), f).toBe(true);
      },
      300_000,
    );
  }
});
