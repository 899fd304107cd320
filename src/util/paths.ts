// A run never writes to, or deletes, one of its inputs: outputs are compared with the inputs by real path
// (symlinks resolved), so `score.out: data.jsonl`, a link to the data, or an output inside the model folder is
// refused before any work.
import { realpath } from "node:fs/promises";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { UserError, isSystemError } from "./errors.js";

/** The real path of `path`; for one that does not exist yet, its nearest existing ancestor's, plus the rest. */
export async function realPathOf(path: string): Promise<string> {
  const abs = resolve(path);
  try {
    return await realpath(abs);
  } catch (err) {
    if (!isSystemError(err) || (err.code !== "ENOENT" && err.code !== "ENOTDIR")) throw err;
    const parent = dirname(abs);
    return parent === abs ? abs : join(await realPathOf(parent), basename(abs));
  }
}

/** True when `path` is `folder` or inside it (both real paths). */
export function isInside(path: string, folder: string): boolean {
  const rel = relative(folder, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !rel.startsWith(sep));
}

export interface RunInput {
  path: string;
  /** What it is to the run, for the message: "data file", "model folder", "config file", "shard"... */
  role: string;
  /** A folder: nothing inside it may be written either. */
  folder?: boolean;
}

/** The inputs of one run, by real path. */
export class RunInputs {
  private constructor(private readonly inputs: (RunInput & { real: string })[]) {}

  static async of(inputs: RunInput[]): Promise<RunInputs> {
    return new RunInputs(await Promise.all(inputs.map(async (i) => ({ ...i, real: await realPathOf(i.path) }))));
  }

  /** Fails naming `key` (the config key or flag that names the output) if `output` is, or lies inside, an input. */
  async check(output: string, key: string): Promise<void> {
    const real = await realPathOf(output);
    for (const input of this.inputs)
      if (real === input.real || (input.folder && isInside(real, input.real)))
        throw new UserError(
          `${key} ${output} ${real === input.real ? "is" : "is inside"} the ${input.role} ${input.path}: an input is never written to; choose another ${key}`,
        );
  }
}
