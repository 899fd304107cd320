// Opening a model folder's files as a careful reader: only regular files, of a bounded size, are read. A
// device (/dev/zero never ends), a FIFO (blocks until someone writes), a folder or a socket is refused before
// a byte is read or handed to onnxruntime; a size is checked before anything is allocated for it.
import { constants, type Stats } from "node:fs";
import { open, stat, type FileHandle } from "node:fs/promises";
import { formatBytes } from "../util/math.js";
import { UserError, atPath, readingFile } from "../util/errors.js";

/** What a file that is not a regular file is, in words. */
function kindOf(s: Stats): string {
  if (s.isDirectory()) return "a folder";
  if (s.isCharacterDevice() || s.isBlockDevice()) return "a device";
  if (s.isFIFO()) return "a named pipe (FIFO)";
  if (s.isSocket()) return "a socket";
  return "not a regular file";
}

/** Fails, naming `path` and what it is, unless it is a regular file (symlinks followed). */
function requireRegular(path: string, s: Stats, what: string): void {
  if (!s.isFile()) throw new UserError(`${path}: is ${kindOf(s)}, not a regular file; ${what} must be a regular file`);
}

/** The size of `path` after checking, without opening it, that it is a regular file. */
export async function regularFileSize(path: string, what: string): Promise<number> {
  const s = await readingFile(path, () => stat(path));
  requireRegular(path, s, what);
  return s.size;
}

/**
 * `path` opened for reading, checked (by the open handle, so a swap after the check does not count) to be a
 * regular file. It is stat'ed before it is opened, as opening some devices acts on them, and opened
 * non-blocking, as opening a FIFO waits for a writer.
 */
export async function openRegular(path: string, what: string): Promise<{ handle: FileHandle; size: number }> {
  await regularFileSize(path, what);
  const handle = await readingFile(path, () => open(path, constants.O_RDONLY | constants.O_NONBLOCK));
  try {
    const s = await handle.stat();
    requireRegular(path, s, what);
    return { handle, size: s.size };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** The most one read asks for: Node aborts the process (a native assertion) on a read of 2 GiB or more. */
export const MAX_READ_BYTES = 2 ** 30;

/**
 * Fills `into` from `position` in the file, in reads of at most `maxRead` bytes; fails if the file ends first
 * (it shrank while being read).
 */
export async function readFully(
  handle: FileHandle,
  path: string,
  into: Uint8Array,
  position: number,
  maxRead = MAX_READ_BYTES,
): Promise<void> {
  let done = 0;
  while (done < into.byteLength) {
    const length = Math.min(into.byteLength - done, maxRead);
    const { bytesRead } = await readingFile(path, () => handle.read(into, done, length, position + done));
    if (bytesRead === 0)
      throw new UserError(`${path}: the file got shorter while it was read; was it being replaced? rerun when it is complete`);
    done += bytesRead;
  }
}

/** Writes all of `data` at `position` in the file, in writes of at most MAX_READ_BYTES (the same limit applies). */
export async function writeFully(handle: FileHandle, path: string, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.byteLength) {
    const length = Math.min(data.byteLength - done, MAX_READ_BYTES);
    const { bytesWritten } = await atPath(path, () => handle.write(data, done, length, position + done));
    done += bytesWritten;
  }
}

/**
 * The bytes of a regular file of at most `maxBytes` (`limit` says why, in the message). Read with explicit
 * positions, so no size limit of fs.readFile applies.
 */
export async function readRegularFile(path: string, what: string, maxBytes: number, limit: string): Promise<Uint8Array> {
  const { handle, size } = await openRegular(path, what);
  try {
    if (size > maxBytes) throw new UserError(`${path}: ${formatBytes(size)} is more than ${limit}`);
    const data = new Uint8Array(size);
    await readFully(handle, path, data, 0);
    return data;
  } finally {
    await handle.close();
  }
}
