// The shape of src/ (CONTRIBUTING.md): no import cycle between files, no folder importing from a folder that
// imports it (directly or through others), each stage reading only what the stages before it hand on, and
// functions short enough to read at once, so each stage can be read, tested and changed on its own.
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { expect, it } from "vitest";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));

const sourceFiles = (): string[] =>
  readdirSync(SRC, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
    .sort();

/** file -> the files of src/ it imports (relative imports: static, dynamic and type-only ones). */
function importGraph(): Map<string, string[]> {
  return new Map(
    sourceFiles().map((f) => {
      const { importedFiles } = ts.preProcessFile(readFileSync(join(SRC, f), "utf8"), true, true);
      const targets = importedFiles
        .map((m) => m.fileName)
        .filter((name) => name.startsWith("."))
        .map((name) => relative(SRC, resolve(dirname(join(SRC, f)), name.replace(/\.js$/, ".ts"))));
      return [f, targets];
    }),
  );
}

/** A cycle of the graph as a list of nodes, or undefined. */
function findCycle(graph: Map<string, Iterable<string>>): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === "done") return undefined;
    if (state.get(node) === "open") return [...path.slice(path.indexOf(node)), node];
    state.set(node, "open");
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(node, "done");
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

/** The folder of src/ a file is in (a file at the top, version.ts, is its own). */
const folderOf = (f: string) => f.split("/")[0]!;

/** "from imports to" for each import of a file in folder `from` whose target is in a folder `allowed` refuses. */
function importsFrom(from: string, allowed: (folder: string) => boolean): string[] {
  return [...importGraph()]
    .filter(([file]) => folderOf(file) === from)
    .flatMap(([file, targets]) => targets.filter((t) => folderOf(t) !== from && !allowed(folderOf(t))).map((t) => `${file} imports ${t}`));
}

it("no import cycle between files of src/", () => {
  const graph = importGraph();
  for (const [file, targets] of graph) for (const t of targets) expect(graph.has(t), `${file} imports ${t}`).toBe(true);
  expect(findCycle(graph)).toBeUndefined();
});

it("no folder of src/ imports from a folder that imports it", () => {
  const folders = new Map<string, Set<string>>();
  for (const [file, targets] of importGraph()) {
    const from = folderOf(file);
    if (!folders.has(from)) folders.set(from, new Set());
    for (const t of targets) if (folderOf(t) !== from) folders.get(from)!.add(folderOf(t));
  }
  expect(findCycle(folders)).toBeUndefined();
});

it("select/, write/ and report/ never import score/: the stages after scoring read the scores contract", () => {
  const offenders = ["select", "write", "report"].flatMap((stage) => importsFrom(stage, (f) => f !== "score"));
  expect(offenders, "imports of score/ after the score stage").toEqual([]);
});

it("score/ never imports select/: scoring comes before selection on the road", () => {
  expect(
    importsFrom("score", (f) => f !== "select"),
    "imports of select/ in score/",
  ).toEqual([]);
});

it("report/ never imports write/ or data/: it reports on the typed objects the run hands it", () => {
  expect(
    importsFrom("report", (f) => f !== "write" && f !== "data"),
    "imports of write/ or data/ in report/",
  ).toEqual([]);
});

it("cli/ imports only run/, kit/, config/ and util/: a command parses its flags and calls the executor", () => {
  // version.ts: the package's name and version (--version), a leaf at the top of src/.
  const allowed = new Set(["run", "kit", "config", "util", "version.ts"]);
  expect(
    importsFrom("cli", (f) => allowed.has(f)),
    "imports in cli/ of folders other than run/, kit/, config/, util/",
  ).toEqual([]);
});

const MAX_FUNCTION_LINES = 60;

/**
 * Functions allowed to stay longer than MAX_FUNCTION_LINES, as "file:function" (file relative to src/) ->
 * why it reads better long than split. Empty: none does yet.
 */
const LONG_FUNCTIONS: Record<string, string> = {};

/** "file:function" -> lines, for each function longer than MAX_FUNCTION_LINES: from its first line to its last. */
function longFunctions(file: string, text: string): Map<string, number> {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const long = new Map<string, number>();
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const line = (pos: number) => sf.getLineAndCharacterOfPosition(pos).line;
      const lines = line(node.getEnd()) - line(node.getStart()) + 1;
      if (lines > MAX_FUNCTION_LINES) long.set(`${file}:${functionName(node)}`, lines);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return long;
}

/** Its own name, or the name of the variable or property it is assigned to. */
function functionName(node: ts.SignatureDeclaration): string {
  const named = node.name ?? ((ts.isVariableDeclaration(node.parent) || ts.isPropertyAssignment(node.parent)) && node.parent.name);
  return named ? named.getText() : "(anonymous)";
}

it(`no function of src/ is longer than ${MAX_FUNCTION_LINES} lines, unless LONG_FUNCTIONS says why`, () => {
  const long = new Map(sourceFiles().flatMap((f) => [...longFunctions(f, readFileSync(join(SRC, f), "utf8"))]));
  const offenders = [...long].filter(([fn]) => !(fn in LONG_FUNCTIONS)).map(([fn, lines]) => `${fn}: ${lines} lines`);
  expect(offenders, `functions over ${MAX_FUNCTION_LINES} lines: split them, or say in LONG_FUNCTIONS why not`).toEqual([]);
  const stale = Object.keys(LONG_FUNCTIONS).filter((fn) => !long.has(fn));
  expect(stale, `LONG_FUNCTIONS entries no longer over ${MAX_FUNCTION_LINES} lines: remove them`).toEqual([]);
});

it("the length rule counts a function's lines from its first to its last", () => {
  const fn = (name: string, lines: number) => `function ${name}() {\n${"  f();\n".repeat(lines - 2)}}\n`;
  const text =
    fn("fits", MAX_FUNCTION_LINES) + fn("tooLong", MAX_FUNCTION_LINES + 1) + `const arrow = () => {\n${"  f();\n".repeat(70)}};\n`;
  expect(longFunctions("fake.ts", text)).toEqual(
    new Map([
      ["fake.ts:tooLong", MAX_FUNCTION_LINES + 1],
      ["fake.ts:arrow", 72],
    ]),
  );
});
