// readFully reads in bounded chunks: Node aborts the process on a single read of 2 GiB or more.
import { writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MAX_READ_BYTES, readFully } from "../../src/model/files.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("dlc-prune-files-");

describe("readFully", () => {
  it("reads a range in reads of at most the cap, bytes equal to the file's", async () => {
    expect(MAX_READ_BYTES).toBeLessThan(2 ** 31);
    const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 37 + 11) & 0xff);
    const path = join(tmp, "data.bin");
    writeFileSync(path, data);
    const handle = await open(path, "r");
    const lengths: number[] = [];
    const read = handle.read.bind(handle) as (...a: unknown[]) => Promise<{ bytesRead: number }>;
    (handle as unknown as { read: unknown }).read = (buf: Uint8Array, off: number, len: number, pos: number) => {
      lengths.push(len);
      return read(buf, off, len, pos);
    };
    try {
      const into = new Uint8Array(900);
      await readFully(handle, path, into, 100, 64);
      expect(Buffer.from(into).equals(Buffer.from(data.subarray(100)))).toBe(true);
      expect(Math.max(...lengths)).toBe(64);
      expect(lengths.length).toBe(Math.ceil(900 / 64));
    } finally {
      await handle.close();
    }
  });

  it("fails naming the file when it ends before the range does", async () => {
    const path = join(tmp, "short.bin");
    writeFileSync(path, new Uint8Array(10));
    const handle = await open(path, "r");
    try {
      await expect(readFully(handle, path, new Uint8Array(20), 0, 4)).rejects.toThrow(`${path}: the file got shorter`);
    } finally {
      await handle.close();
    }
  });
});
