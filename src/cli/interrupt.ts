// Ctrl-C (SIGINT) and SIGTERM: the stage running is told through an AbortSignal, saves its progress and stops
// with Interrupted; the CLI then restores the terminal, says how to resume and exits 130. A second signal
// does not wait.
export async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>, restoreTerminal: () => void): Promise<T> {
  const controller = new AbortController();
  const onSignal = () => {
    if (!controller.signal.aborted) return controller.abort();
    restoreTerminal();
    process.stderr.write("interrupted (a second time: progress since the last checkpoint is lost)\n");
    process.exit(130);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await work(controller.signal);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    restoreTerminal();
  }
}
