// Starting the CLI under a low limit of open files (issue 20, point 9): Node's module loader opens every file
// of a module graph at once, so the CLI loads only the command being run, and a limit too low even for that is
// one line saying so (not a stack from the loader, not a bare "Cannot find package").
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CLI } from "../helpers/cli.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("dlc-prune-startup-");

/** The CLI with `ulimit -n` set to `limit` first. */
function withLimit(limit: number, args: string[]) {
  const r = spawnSync("bash", ["-c", `ulimit -n ${limit} && exec "$0" "$@"`, process.execPath, CLI, ...args], {
    cwd: tmp,
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

const hasBash = spawnSync("bash", ["-c", "ulimit -n 64"]).status === 0;

describe.skipIf(!hasBash)("a low limit of open files (needs bash's ulimit)", () => {
  it("only the command being run is loaded: config keys and model tiny start with ulimit -n 160", () => {
    const keys = withLimit(160, ["config", "keys"]);
    expect(keys.status, keys.stderr).toBe(0);
    expect(keys.stdout).toContain("| `data.path` |");
    const out = join(tmp, "tiny");
    const tiny = withLimit(160, ["model", "tiny", "--out", out, "--layers", "1"]);
    expect(tiny.status, tiny.stderr).toBe(0);
    expect(existsSync(join(out, "onnx/model.onnx"))).toBe(true);
    const version = withLimit(64, ["--version"]);
    expect(version.status, version.stderr).toBe(0);
  });

  it("a limit too low to load a command is one line naming the limit and what to do, for every command", () => {
    const commands = [
      ["run", "--config", "r.yaml"],
      ["score", "--help"],
      ["select", "--config", "r.yaml"],
      ["merge", "a.arrow", "--out", "m.arrow"],
      ["compare", "a", "--out", "c"],
      ["estimate", "--config", "r.yaml"],
      ["--help"],
    ];
    for (const [limit, args] of [24, 64]
      .flatMap((limit) => commands.map((args) => [limit, args] as const))
      .concat([[24, ["config", "keys"]]])) {
      const r = withLimit(limit, args);
      const what = `ulimit -n ${limit}; dlc-prune ${args.join(" ")}\n${r.stderr}`;
      expect(r.signal, what).toBeNull();
      expect(r.status, what).toBe(1);
      expect(r.stderr, what).not.toMatch(/internal error|^\s+at .+[(:]\d+/m);
      expect(r.stderr.trim().split("\n"), what).toHaveLength(1);
      expect(r.stderr, what).toMatch(
        new RegExp(
          `^dlc-prune: error: cannot load dlc-prune.*(too many open files \\(the limit, ulimit -n, is ${limit}\\)|the limit of open files \\(ulimit -n\\) is ${limit}, likely too low).*: raise it \\(e\\.g\\. ulimit -n 4096\\) and rerun`,
        ),
      );
    }
  });
});
