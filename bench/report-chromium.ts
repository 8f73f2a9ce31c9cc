// Screenshots of self-contained HTML pages (the report's plots) in Debian's Chromium through
// playwright-core (never a downloaded browser). A page sets `body[data-done='1']` when its
// charts are drawn; a page error or a page that never gets there fails with its message.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export interface PlotPage {
  /** Where the PNG goes. */
  file: string;
  /** Named in errors. */
  name: string;
  html: string;
}

/** Render each page to its PNG (full page); returns the files written. */
export async function screenshotPages(pages: PlotPage[]): Promise<string[]> {
  if (pages.length === 0) return [];
  const { chromium } = await import("playwright-core");
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "weir-bench-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
    viewport: { width: 1900, height: 1000 },
  });
  const written: string[] = [];
  try {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    for (const p of pages) {
      fs.mkdirSync(path.dirname(p.file), { recursive: true });
      errors.length = 0;
      await page.setContent(p.html);
      await page
        .waitForSelector("body[data-done='1']", { timeout: 120_000 })
        .catch((e: unknown) => {
          throw new Error(`plot ${p.name}: ${errors.join("; ") || String(e)}`);
        });
      await page.screenshot({ path: p.file, fullPage: true });
      written.push(p.file);
    }
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  return written;
}
