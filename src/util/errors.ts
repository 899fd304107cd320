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

/** Ctrl-C or SIGTERM: the stage saved what it could (scoring: its progress) and stopped; the same command resumes. */
export class Interrupted extends Error {
  constructor() {
    super("interrupted");
  }
}

/** What a Node system error code means, in words a user reads. */
const IO_REASONS: Record<string, string> = {
  ENOENT: "not found",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  EFBIG: "file too large for the file system",
  EISDIR: "is a folder, expected a file",
  ENOTDIR: "a part of the path is not a folder",
  EEXIST: "already exists",
  ENOTEMPTY: "folder not empty",
  ELOOP: "too many levels of symbolic links (a symlink loop?)",
  ENAMETOOLONG: "name too long",
  EMFILE: "too many open files",
  ENFILE: "too many open files in the system",
  EIO: "input/output error",
  EBUSY: "busy",
  ETXTBSY: "busy",
  EXDEV: "on another file system",
  ENOMEM: "out of memory",
};

interface SystemError extends Error {
  code: string;
  path?: string;
  dest?: string;
}

export function isSystemError(err: unknown): err is SystemError {
  return err instanceof Error && typeof (err as SystemError).code === "string" && (err as SystemError).code in IO_REASONS;
}

/** Our temporary names (`.<name>.tmp-<pid>-<hex>`, see tempSibling) shown as the file they become. */
export function displayPath(path: string): string {
  return path.replace(/(^|\/)\.([^/]+)\.tmp-\d+-[0-9a-f]+$/, "$1$2");
}

/** What went wrong, in words: "no space left on the device". */
export function systemErrorReason(err: SystemError): string {
  return IO_REASONS[err.code]!;
}

/** "<path>: <reason>" for a Node system error (file system, disk, permissions): the user's to fix, no stack. */
export function systemErrorMessage(err: SystemError, path = err.path): string {
  return path ? `${displayPath(path)}: ${systemErrorReason(err)}` : `${systemErrorReason(err)} (${err.message})`;
}

/** Runs `fn`, naming `path` in a system error that does not (a failed write says ENOSPC, not where). */
export async function atPath<T>(path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isSystemError(err) && !err.path) err.path = path;
    throw err;
  }
}

/** Runs `fn`, turning a system error (not found, a folder, permissions, a symlink loop...) into a UserError naming `path`. */
export async function readingFile<T>(path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!isSystemError(err)) throw err;
    throw new UserError(err.code === "ENOENT" ? `${path}: file not found` : systemErrorMessage(err, path));
  }
}
