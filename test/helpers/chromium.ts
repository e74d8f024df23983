/**
 * Debian's Chromium driven by playwright-core, for the tests that need a real browser (the dashboard
 * e2e test, the security suite): one launch with the flags a headless container needs, and pages that
 * record their script errors and every Content-Security-Policy violation.
 */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { findExecutable } from '../../src/bus/redis-server.js';

export async function launchChromium(): Promise<Browser> {
  const executablePath = findExecutable('chromium');
  if (!executablePath)
    throw new Error('chromium is not installed: apt-get install -y chromium (npm test installs it)');
  return chromium.launch({
    executablePath,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface WatchedPage {
  readonly page: Page;
  /** Uncaught script errors of the page. */
  readonly errors: string[];
  /** CSP violations: `securitypolicyviolation` events and the console's CSP reports. */
  readonly violations: string[];
}

/**
 * A new page that records errors and CSP violations: in a new context of `from` (no cookies shared)
 * when it is a browser, in `from` when it is a context (a profile already signed in).
 */
export async function watchedPage(from: Browser | BrowserContext): Promise<WatchedPage> {
  const context = 'newContext' in from ? await from.newContext() : from;
  const page = await context.newPage();
  const errors: string[] = [];
  const violations: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (/Content[- ]Security[- ]Policy/i.test(m.text())) violations.push(m.text());
  });
  await page.exposeFunction('__reportCspViolation', (v: string) => violations.push(v));
  await page.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (e) =>
      window.__reportCspViolation(e.violatedDirective + ' ' + e.blockedURI));`,
  });
  return { page, errors, violations };
}
