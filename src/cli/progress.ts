// Progress of long work: a bar per level (level k/K, rows, tokens/s, the whole job's ETA) on a terminal,
// plain log lines otherwise. Log lines go through `log`, which ends the bar's line first, so the two never
// write over each other; `stop` leaves the terminal as it was (cursor shown, line wrap on).
import cliProgress from "cli-progress";
import { passLabel, type ScoreProgress } from "../run/score.js";

const LOG_EVERY_SECONDS = 10;

/** "9s", "1m40s", "2h05m" */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

export interface ProgressDisplay {
  update(p: ScoreProgress): void;
  /** A log line, on a line of its own. */
  log(line: string): void;
  /** Ends the bar and restores the terminal; safe to call more than once. */
  stop(): void;
}

type Clock = () => number;
type EncodeProgress = Extract<ScoreProgress, { phase: "encode" }>;
type PassProgress = Extract<ScoreProgress, { phase: "score" }>;

const passName = (p: PassProgress) => passLabel(p, p.levels);

type Pacer = { due: () => boolean; wrote: () => void };

/** Log lines at most every LOG_EVERY_SECONDS: the tokenizer's, and off a terminal the passes'. */
function pacer(now: Clock): Pacer {
  let lastLine = -Infinity;
  return {
    due: () => now() - lastLine >= LOG_EVERY_SECONDS,
    wrote: () => {
      lastLine = now();
    },
  };
}

/** The tokenizer's rows/s, when `pace` is due. */
const tokenizerLine = (stream: NodeJS.WriteStream, pace: Pacer) => (p: EncodeProgress) => {
  if (!pace.due()) return;
  pace.wrote();
  stream.write(p.rowsDone ? `tokenizing: ${p.rowsDone} rows, ${Math.round(p.rate)} rows/s\n` : "tokenizing...\n");
};

/** Off a terminal: a line per pass every LOG_EVERY_SECONDS, and when a pass begins or ends. */
function plainProgress(stream: NodeJS.WriteStream, now: Clock): ProgressDisplay {
  const pace = pacer(now);
  const encoding = tokenizerLine(stream, pace);
  let pass = "";
  return {
    update: (p) => {
      if (p.phase === "encode") return encoding(p);
      const passDone = p.rowsDone === p.rowsTotal;
      if (!pace.due() && !passDone && passName(p) === pass) return;
      pace.wrote();
      pass = passName(p);
      stream.write(`${passName(p)}: ${p.rowsDone}/${p.rowsTotal} rows, ${Math.round(p.rate)} tok/s, ETA ${formatDuration(p.etaSeconds)}\n`);
    },
    log: (l) => stream.write(l + "\n"),
    stop: () => {},
  };
}

/** On a terminal: a bar per pass. */
function barProgress(stream: NodeJS.WriteStream, now: Clock): ProgressDisplay {
  const encoding = tokenizerLine(stream, pacer(now));
  // {eta_job} rather than cli-progress's own {eta}: that one is the bar's (one level's rows), without a unit.
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: "{pass} [{bar}] {value}/{total} rows | {rate} tok/s | ETA {eta_job}",
      hideCursor: true,
      clearOnComplete: false,
      gracefulExit: false,
    },
    cliProgress.Presets.shades_classic,
  );
  let active = false;
  let pass = "";
  const end = () => {
    if (active) bar.stop();
    active = false;
  };
  return {
    update: (p) => {
      if (p.phase === "encode") return encoding(p);
      const payload = { pass: passName(p), rate: Math.round(p.rate), eta_job: formatDuration(p.etaSeconds) };
      if (payload.pass !== pass) end();
      pass = payload.pass;
      if (!active) {
        bar.start(p.rowsTotal, p.rowsDone, payload);
        active = true;
      } else bar.update(p.rowsDone, payload);
      // A level's last batch ends its bar: what is logged next starts on a fresh line.
      if (p.rowsDone === p.rowsTotal) end();
    },
    log: (l) => {
      end();
      stream.write(l + "\n");
    },
    stop: end,
  };
}

export function scoreProgress(stream: NodeJS.WriteStream = process.stderr, now: Clock = () => performance.now() / 1000): ProgressDisplay {
  return stream.isTTY ? barProgress(stream, now) : plainProgress(stream, now);
}
