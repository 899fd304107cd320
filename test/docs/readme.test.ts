// The README stays true: its option table is the schema's, its commands exist, its code compiles.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { expect, it } from "vitest";
import { keysMarkdown } from "../../src/config/keys.js";
import { runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/tmp.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

it("the configuration reference is the table the schema generates", () => {
  const table = /<!-- config-keys:start -->\n([\s\S]*?)\n<!-- config-keys:end -->/.exec(readme)?.[1];
  expect(table).toBe(keysMarkdown());
});

it("the quick start's two commands are the demo run and npm test", () => {
  expect(readme).toContain("npm ci && npx dlc-prune run --config configs/demo.yaml");
  expect(readme).toMatch(/^npm test\b/m);
  const ci = readFileSync(new URL("../../.ci/run", import.meta.url), "utf8");
  expect(ci).toContain("npm test");
});

it("every command the README lists answers --help", () => {
  for (const cmd of [
    ["run"],
    ["estimate"],
    ["score"],
    ["select"],
    ["report"],
    ["compare"],
    ["merge"],
    ["model", "tiny"],
    ["model", "import-llama2c"],
    ["model", "import-hf"],
    ["config", "keys"],
  ]) {
    const r = runCli([...cmd, "--help"]);
    expect(r.status, `${cmd.join(" ")}: ${r.stderr}`).toBe(0);
    expect(readme).toContain(`dlc-prune ${cmd[0]}`);
  }
});

it("every TypeScript block of the README type-checks against the package's types", () => {
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
  expect(blocks.length).toBeGreaterThan(0);
  // A project beside the repository that depends on it, as a user's would (dist/ is built by `npm test`).
  const dir = tempDir("dlc-prune-readme-");
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(ROOT, join(dir, "node_modules/dlc-prune"));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  const files = blocks.map((code, i) => {
    const file = join(dir, `readme-${i}.ts`);
    writeFileSync(file, code);
    return file;
  });
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: ["node"],
    typeRoots: [join(ROOT, "node_modules/@types")],
  });
  const errors = ts
    .getPreEmitDiagnostics(program)
    .map((d) => `${d.file ? `${d.file.fileName.replace(dir, "README")}: ` : ""}${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
  expect(errors).toEqual([]);
});
