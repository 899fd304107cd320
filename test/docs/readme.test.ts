// The README stays true: its option table is the schema's, its commands exist.
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { keysMarkdown } from "../../src/config/keys.js";
import { runCli } from "../helpers/cli.js";

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
  for (const cmd of [["run"], ["score"], ["select"], ["report"], ["merge"], ["model", "tiny"], ["model", "import-llama2c"], ["config", "keys"]]) {
    const r = runCli([...cmd, "--help"]);
    expect(r.status, `${cmd.join(" ")}: ${r.stderr}`).toBe(0);
    expect(readme).toContain(`dlc-prune ${cmd[0]}`);
  }
});
