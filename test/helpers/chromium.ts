// Opens a page in headless Chromium (Debian's, installed by .ci/run) and collects its errors.
import { existsSync } from "node:fs";
import { chromium, type Page } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const hasChromium = existsSync(CHROMIUM);
export const NO_CHROMIUM = `skipped: no Chromium at ${CHROMIUM}; .ci/run installs Debian's chromium`;

/** `file` opened in a page of `viewport` size, with the errors it reported, for `look`. */
async function withPage<T>(
  file: string,
  viewport: { width: number; height: number },
  look: (page: Page, errors: string[]) => Promise<T>,
): Promise<T> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    const page = await browser.newPage({ viewport });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()}`));
    await page.goto(`file://${file}`);
    return await look(page, errors);
  } finally {
    await browser.close();
  }
}

export function openInChromium(file: string): Promise<{ errors: string[]; svgs: number; title: string }> {
  return withPage(file, { width: 1280, height: 720 }, async (page, errors) => ({
    errors,
    svgs: await page.locator("svg").count(),
    title: await page.title(),
  }));
}

/** Where an element is drawn, in CSS pixels from the page's top left, and whether it is what the page shows at its centre. */
export interface Shown {
  top: number;
  bottom: number;
  right: number;
  /** The element (or one inside it) is the topmost at its visible centre: nothing covers it. */
  onTop: boolean;
}

/**
 * The first screen of `file` at `width` x `height`, as headless Chromium draws it: a PNG screenshot to
 * `screenshot`, and where the first element matching each selector is (null: none matches), and the page's width.
 */
export function firstScreen(
  file: string,
  selectors: string[],
  screenshot: string,
  size = { width: 1400, height: 900 },
): Promise<{ shown: (Shown | null)[]; scrollWidth: number; errors: string[] }> {
  return withPage(file, size, async (page, errors) => {
    await page.screenshot({ path: screenshot });
    // Run in the page (a string: the DOM's types are not this project's).
    const where = (selector: string) => `(() => {
      const e = document.querySelector(${JSON.stringify(selector)});
      if (!e) return null;
      const r = e.getBoundingClientRect();
      const y = (Math.max(r.top, 0) + Math.min(r.bottom, innerHeight)) / 2;
      const x = (Math.max(r.left, 0) + Math.min(r.right, innerWidth)) / 2;
      const hit = document.elementFromPoint(x, y);
      return { top: r.top, bottom: r.bottom, right: r.right, onTop: !!hit && e.contains(hit) };
    })()`;
    const shown: (Shown | null)[] = [];
    for (const s of selectors) shown.push(await page.evaluate<Shown | null>(where(s)));
    return { shown, scrollWidth: await page.evaluate<number>("document.documentElement.scrollWidth"), errors };
  });
}
