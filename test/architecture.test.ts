// The shape of src/ (CONTRIBUTING.md): no import cycle between files, and no folder imports from a folder
// that imports it (directly or through others), so each stage can be read, tested and changed on its own.
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));

/** file -> the files of src/ it imports (relative imports, type-only ones included). */
function importGraph(): Map<string, string[]> {
  const files = readdirSync(SRC, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"));
  return new Map(
    files.map((f) => {
      const text = readFileSync(join(SRC, f), "utf8");
      const targets = [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+"(\.{1,2}\/[^"]+)"/gms)].map((m) =>
        relative(SRC, resolve(dirname(join(SRC, f)), m[1]!.replace(/\.js$/, ".ts"))),
      );
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

it("no import cycle between files of src/", () => {
  const graph = importGraph();
  for (const [file, targets] of graph) for (const t of targets) expect(graph.has(t), `${file} imports ${t}`).toBe(true);
  expect(findCycle(graph)).toBeUndefined();
});

it("no folder of src/ imports from a folder that imports it", () => {
  const folderOf = (f: string) => f.split("/")[0]!;
  const folders = new Map<string, Set<string>>();
  for (const [file, targets] of importGraph()) {
    const from = folderOf(file);
    if (!folders.has(from)) folders.set(from, new Set());
    for (const t of targets) if (folderOf(t) !== from) folders.get(from)!.add(folderOf(t));
  }
  expect(findCycle(folders)).toBeUndefined();
  // The stages after scoring read the scores contract, never the score stage itself.
  for (const stage of ["select", "write", "report"]) expect([...folders.get(stage)!], stage).not.toContain("score");
});
