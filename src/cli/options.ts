// CLI flags that set config keys: their types, choices and help come from the config schema.
import type { Argv, Options } from "yargs";
import { keyInfo } from "../config/keys.js";
import { loadConfig, parseSets, type Override } from "../config/load.js";
import type { Config } from "../config/schema.js";

/** flag name -> config key */
export type FlagMap = Record<string, string>;

/** One yargs option per flag, typed and described by its config key. */
export function withSchemaFlags<T>(y: Argv<T>, flags: FlagMap): Argv<T> {
  let out = y;
  for (const [flag, key] of Object.entries(flags)) {
    const info = keyInfo(key);
    const opt: Options = {
      describe: `${info.description} [${key}${info.default === undefined ? "" : `, default ${JSON.stringify(info.default)}`}]`,
    };
    if (info.choices) opt.choices = info.choices;
    // A list flag takes repeats and commas alike: --ratio 0.1 --ratio 0.2, or --ratio 0.1,0.2.
    if (info.type === "array")
      Object.assign(opt, {
        type: "string",
        array: true,
        coerce: (values: unknown[]) =>
          values.flatMap((v) => String(v).split(",")).map((v) => (v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : v)),
      });
    else opt.type = info.type === "number" ? "number" : info.type === "boolean" ? "boolean" : "string";
    out = out.option(flag, opt) as Argv<T>;
  }
  return out;
}

/** The given flags as overrides of their config keys. */
export function flagValues(argv: Record<string, unknown>, flags: FlagMap): Override[] {
  return Object.entries(flags)
    .filter(([flag]) => argv[flag] !== undefined)
    .map(([flag, key]) => [key, argv[flag], `--${flag}`]);
}

/** --config and --set, then the mapped flags. */
export function withConfigFlags<T>(y: Argv<T>, flags: FlagMap): Argv<T> {
  const base = y
    .option("config", { type: "string", describe: "YAML recipe (configs/*.yaml); flags and --set override its keys" })
    .option("set", { type: "string", array: true, describe: "override any config key: --set score.levels=5 (YAML values)" }) as Argv<T>;
  return withSchemaFlags(base, flags);
}

/** The config from --config, then the mapped flags, then --set, in that order of precedence (last wins). */
export async function configFromArgs(argv: Record<string, unknown>, flags: FlagMap): Promise<Config> {
  const overrides = flagValues(argv, flags);
  overrides.push(...parseSets((argv.set as string[] | undefined) ?? []));
  return loadConfig({ file: argv.config as string | undefined, overrides });
}
