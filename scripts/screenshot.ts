// Writes docs/screenshot.png: the web client at 1200x800 with two users online and the answer F(100).
// Usage: npx tsx scripts/screenshot.ts [output.png] (needs Debian's chromium at /usr/bin/chromium).
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { startPulse } from '../test/helpers/pulse.js';
import { buildWeb } from './build-web.js';

const output = resolve(process.argv[2] ?? 'docs/screenshot.png');
const colorScheme = process.env.COLOR_SCHEME === 'dark' ? 'dark' : 'light';

await buildWeb(); // the page as its source is now
const pulse = await startPulse();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});
try {
  const options = { viewport: { width: 1200, height: 800 }, colorScheme, locale: 'en-GB', timezoneId: 'UTC' } as const;
  const ada = await (await browser.newContext(options)).newPage();
  const grace = await (await browser.newContext(options)).newPage();
  await ada.goto(`${pulse.baseUrl}/?name=${encodeURIComponent('Ada Lovelace')}`);
  await grace.goto(`${pulse.baseUrl}/?name=${encodeURIComponent('Grace Hopper')}`);

  const open = (page: typeof ada) =>
    page.waitForFunction(() => document.querySelector('#state')?.getAttribute('data-state') === 'open', null, { timeout: 15_000 });
  await open(ada);
  await open(grace);
  await ada.waitForFunction(() => document.querySelectorAll('#users li').length >= 2, null, { timeout: 15_000 });

  await ada.fill('#fib-n', '100');
  await ada.click('#fib-form button[type="submit"]');
  await ada.waitForFunction(() => (document.querySelector('#fib-value') as HTMLTextAreaElement).value.length === 21, null, { timeout: 15_000 });
  // Wait for a fresh tick so the clock is not caught mid-update, and take the focus off the form.
  await ada.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  await ada.mouse.move(0, 0);
  await ada.waitForTimeout(300);

  await mkdir(dirname(output), { recursive: true });
  await ada.screenshot({ path: output });
  console.log(`wrote ${output}`);
} finally {
  await browser.close();
  await pulse.stop();
}
