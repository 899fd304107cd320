/**
 * An error the user can act on (bad input, bad config, missing file).
 * The CLI prints its message as one line and exits non-zero, without a stack trace.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}

/** Wraps `fn`, turning a Node "file not found" into a UserError naming the file. */
export async function readingFile<T>(path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new UserError(`${path}: file not found`);
    if (code === "EISDIR") throw new UserError(`${path}: is a directory, expected a file`);
    if (code === "EACCES") throw new UserError(`${path}: permission denied`);
    throw err;
  }
}
