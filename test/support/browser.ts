/**
 * A real headless Chromium for console tests (Debian's `chromium`, driven
 * by playwright-core), with a fresh profile folder, closed at teardown.
 * Uncaught page errors are collected so a test can assert there were none.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { Test } from 'tap';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A browser page and what went wrong in it. */
export interface BrowserPage {
  context: BrowserContext;
  page: Page;
  /** Uncaught exceptions in the page. */
  pageErrors: string[];
}

/** Launches Chromium with a fresh user-data-dir; everything is closed and removed at teardown. */
export async function openBrowser(t: Test, viewport = { width: 1600, height: 900 }): Promise<BrowserPage> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'ioc-edge-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport, timeout: 20_000 });
  t.teardown(async () => {
    await context.close().catch(() => undefined);
    rmSync(profile, { recursive: true, force: true });
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(10_000);
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  return { context, page, pageErrors };
}
