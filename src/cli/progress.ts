// Progress of long work: a bar (level k/K, rows, tokens/s, ETA) on a terminal, plain log lines otherwise.
import cliProgress from "cli-progress";
import type { ScoreProgress } from "../score/score.js";

const LOG_EVERY_SECONDS = 10;

const rateOf = (p: ScoreProgress) => p.tokensThisProcess / Math.max(p.seconds, 1e-9);

function eta(p: ScoreProgress): string {
  const rate = rateOf(p);
  const left = rate > 0 ? (p.tokensTotal - p.tokensDone) / rate : NaN;
  if (!Number.isFinite(left)) return "?";
  const s = Math.round(left);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

export function scoreProgress(stream: NodeJS.WriteStream = process.stderr): { update: (p: ScoreProgress) => void; stop: () => void } {
  let lastEncode = 0;
  const encoding = (p: ScoreProgress) => {
    if (p.seconds - lastEncode < LOG_EVERY_SECONDS) return;
    lastEncode = p.seconds;
    stream.write(`tokenizing: ${p.rowsDone} rows, ${Math.round(p.rowsDone / Math.max(p.seconds, 1e-9))} rows/s\n`);
  };
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { stream, format: "level {level}/{levels} [{bar}] {value}/{total} rows | {rate} tok/s | ETA {eta}", hideCursor: true, clearOnComplete: false },
      cliProgress.Presets.shades_classic,
    );
    let level = -1;
    return {
      update: (p) => {
        if (p.phase === "encode") return encoding(p);
        const payload = { level: p.level + 1, levels: p.levels, rate: Math.round(rateOf(p)), eta: eta(p) };
        if (p.level !== level) {
          if (level >= 0) bar.stop();
          bar.start(p.rowsTotal, p.rowsDone, payload);
          level = p.level;
        } else bar.update(p.rowsDone, payload);
      },
      stop: () => bar.stop(),
    };
  }
  let last = -Infinity;
  let level = -1;
  return {
    update: (p) => {
      if (p.phase === "encode") return encoding(p);
      const levelDone = p.rowsDone === p.rowsTotal;
      if (p.seconds - last < LOG_EVERY_SECONDS && !levelDone && p.level === level) return;
      last = p.seconds;
      level = p.level;
      stream.write(
        `level ${p.level + 1}/${p.levels}: ${p.rowsDone}/${p.rowsTotal} rows, ${Math.round(rateOf(p))} tok/s, ETA ${eta(p)}\n`,
      );
    },
    stop: () => {},
  };
}
