// Browser tests of the web client (web/, bundled first by scripts/build-web.ts) against a real
// Pulse, driven by playwright-core and Debian's chromium. Without /usr/bin/chromium one skipped
// test says so, unless BROWSER_REQUIRED=1 (CI), in which case it fails. CHROMIUM_PATH points at
// another chromium binary.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page, type WebSocketRoute } from 'playwright-core';
import { SignJWT } from 'jose';
import { buildWeb } from '../../scripts/build-web.js';
import { startPulse } from '../helpers/pulse.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const hasBrowser = existsSync(CHROMIUM);
const browserRequired = process.env.BROWSER_REQUIRED === '1';

const EVIL_NAME = '<img src=x onerror=alert(1)>';
const WAIT = { timeout: 15_000 };

if (!hasBrowser) {
  const reason = `${CHROMIUM} not found: install Debian's chromium package or set CHROMIUM_PATH (BROWSER_REQUIRED=1 makes this a failure)`;
  test('browser suite', { skip: browserRequired ? false : reason }, () => {
    assert.fail(`BROWSER_REQUIRED=1 but ${CHROMIUM} does not exist: install Debian's chromium package`);
  });
}
// Without a browser the suites are not registered at all: the one test above says why.
const browserSuite: (name: string, options: { timeout: number }, fn: () => void) => void = hasBrowser ? describe : () => undefined;

// The page is served as built: build it now, so that the tests never see a stale bundle.
if (hasBrowser) await buildWeb();

let browser: Browser | undefined;
async function getBrowser(): Promise<Browser> {
  browser ??= await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  return browser;
}
after(async () => {
  await browser?.close();
});

/** A page plus everything it complained about: console errors, page errors, CSP violations, dialogs, HTTP errors. */
interface Watched {
  context: BrowserContext;
  page: Page;
  problems: string[];
  dialogs: string[];
}

/**
 * Counts the WebSockets the page opens, in `webSocketsOpened`. A string, not a function: tsx would
 * wrap a function's inner functions in a __name() the page lacks.
 */
const COUNT_WEBSOCKETS = `
  const opened = { count: 0 };
  window.WebSocket = new Proxy(window.WebSocket, {
    construct: (target, args) => { opened.count++; return Reflect.construct(target, args); },
  });
  Object.defineProperty(window, 'webSocketsOpened', { get: () => opened.count });
`;

const webSocketsOpened = (page: Page) => page.evaluate(() => (globalThis as unknown as { webSocketsOpened: number }).webSocketsOpened);

/** Upgrades the server refused so far, whatever the status. */
async function upgradesRejected(baseUrl: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('pulse_upgrades_rejected_total'))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

async function openPage(url: string, options: { ignoreConsole?: RegExp; initScript?: string } = {}): Promise<Watched> {
  const context = await (await getBrowser()).newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  const problems: string[] = [];
  const dialogs: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    if (options.ignoreConsole?.test(msg.text())) return;
    problems.push(`console.error: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('dialog', (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()} for ${res.url()}`);
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI}`);
    });
  });
  if (options.initScript) await page.addInitScript(options.initScript);
  await page.goto(url);
  return { context, page, problems, dialogs };
}

function assertClean(w: Watched): void {
  assert.deepEqual(w.problems, [], 'no console errors, page errors, CSP violations or HTTP errors');
  assert.deepEqual(w.dialogs, [], 'no dialogs');
}

async function waitOpen(page: Page): Promise<void> {
  await page.waitForFunction(() => document.querySelector('#state')?.getAttribute('data-state') === 'open', null, WAIT);
}

async function ownUserId(page: Page): Promise<string> {
  const handle = await page.waitForFunction(() => document.querySelector('#me')?.getAttribute('data-user-id'), null, WAIT);
  const id = await handle.jsonValue();
  assert.equal(typeof id, 'string');
  return id as string;
}

async function waitForUser(page: Page, id: string): Promise<void> {
  await page.waitForFunction(
    (userId) => Array.from(document.querySelectorAll('#users li')).some((li) => li.getAttribute('data-user-id') === userId),
    id,
    WAIT,
  );
}

async function userRow(page: Page, id: string): Promise<{ name: string; text: string; isMe: boolean }> {
  return page.evaluate((userId) => {
    const li = Array.from(document.querySelectorAll('#users li')).find((el) => el.getAttribute('data-user-id') === userId);
    if (!li) throw new Error(`no row for ${userId}`);
    return {
      name: li.querySelector('.user-name')?.textContent ?? '',
      text: li.textContent ?? '',
      isMe: li.classList.contains('is-me'),
    };
  }, id);
}

async function submitFibonacci(page: Page, n: string): Promise<void> {
  await page.fill('#fib-n', n);
  await page.click('#fib-form button[type="submit"]');
}

const digitsShown = (page: Page) => page.$eval('#fib-digits', (el) => (el.textContent ?? '').replace(/\D/g, ''));

/** Independent reference: F(n) by fast doubling. */
function fibonacci(n: number): bigint {
  let a = 0n;
  let b = 1n;
  for (let bit = 31 - Math.clz32(n); bit >= 0 && n > 0; bit--) {
    const d = a * (2n * b - a);
    const e = a * a + b * b;
    if ((n >> bit) & 1) [a, b] = [e, d + e];
    else [a, b] = [d, e];
  }
  return a;
}

browserSuite('web client, open mode', { timeout: 240_000 }, () => {
  let pulse: Awaited<ReturnType<typeof startPulse>>;
  let ada: Watched;

  before(async () => {
    pulse = await startPulse();
    ada = await openPage(`${pulse.baseUrl}/?name=Ada`);
    await waitOpen(ada.page);
  });
  after(async () => {
    await ada?.context.close();
    await pulse?.stop();
  });

  test('the clock shows the server time and moves', async () => {
    const first = await (
      await ada.page.waitForFunction(() => {
        const text = document.querySelector('#clock')?.textContent ?? '';
        return /\d/.test(text) ? text : false;
      }, null, WAIT)
    ).jsonValue();
    // The welcome shows the server's time as it was, off the second; a tick comes on it. Other tests
    // of this suite reconnect this page meanwhile (another welcome), so wait for a tick, not any change.
    const datetime = await (
      await ada.page.waitForFunction(
        (before) => {
          const clock = document.querySelector('#clock');
          const at = clock?.getAttribute('datetime') ?? '';
          return clock?.textContent !== before && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$/.test(at) ? at : false;
        },
        first,
        WAIT,
      )
    ).jsonValue();
    assert.ok(Math.abs(Date.parse(String(datetime)) - Date.now()) < 5_000, 'the tick shows the server time (this machine\'s clock)');
    assertClean(ada);
  });

  test('F(10) = 55, two digits', async () => {
    await submitFibonacci(ada.page, '10');
    await ada.page.waitForFunction(() => (document.querySelector('#fib-value') as HTMLTextAreaElement).value === '55', null, WAIT);
    assert.equal(await digitsShown(ada.page), '2');
    assert.equal(await ada.page.textContent('#fib-label'), 'F(10)');
    assert.equal(await ada.page.isHidden('#fib-error'), true);
    assertClean(ada);
  });

  test('F(200000) shows 41,798 digits, scrolls, and the page stays responsive', async () => {
    await submitFibonacci(ada.page, '200000');
    await ada.page.waitForFunction(() => (document.querySelector('#fib-digits')?.textContent ?? '').replace(/\D/g, '') === '41798', null, {
      timeout: 30_000,
    });
    const started = Date.now();
    assert.equal(await ada.page.evaluate(() => 6 * 7), 42);
    assert.ok(Date.now() - started < 5_000, 'the page answers promptly after rendering a large answer');

    const box = await ada.page.$eval('#fib-value', (el) => {
      const ta = el as HTMLTextAreaElement;
      return { value: ta.value, scrollHeight: ta.scrollHeight, clientHeight: ta.clientHeight, readOnly: ta.readOnly, overflowY: getComputedStyle(ta).overflowY };
    });
    assert.equal(box.value.length, 41_798);
    assert.equal(box.value, fibonacci(200_000).toString());
    assert.equal(box.readOnly, true);
    assert.equal(box.overflowY, 'auto');
    assert.ok(box.scrollHeight > box.clientHeight, 'the value scrolls inside its box');
    assert.ok(box.clientHeight < 800, 'the box keeps a bounded height');
    assertClean(ada);
  });

  test('Copy copies or selects the value', async () => {
    await ada.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: pulse.baseUrl });
    await submitFibonacci(ada.page, '12');
    await ada.page.waitForFunction(() => (document.querySelector('#fib-value') as HTMLTextAreaElement).value === '144', null, WAIT);
    await ada.page.click('#fib-copy');
    await ada.page.waitForFunction(() => document.querySelector('#fib-copy')?.textContent !== 'Copy', null, WAIT);
    assert.match((await ada.page.textContent('#fib-copy')) ?? '', /Copied|Selected/);
    assertClean(ada);
  });

  test('errors: the page rejects non-integers, the server answers out-of-range', async () => {
    await submitFibonacci(ada.page, '1.5');
    await ada.page.waitForSelector('#fib-error:not([hidden])', WAIT);
    assert.match((await ada.page.textContent('#fib-error')) ?? '', /whole number/);

    await submitFibonacci(ada.page, '99999999999999999999999');
    await ada.page.waitForFunction(() => /OUT_OF_RANGE/.test(document.querySelector('#fib-error')?.textContent ?? ''), null, WAIT);
    assert.equal(await ada.page.isVisible('#fib-error'), true);

    await submitFibonacci(ada.page, '-7');
    await ada.page.waitForFunction(() => (document.querySelector('#fib-value') as HTMLTextAreaElement).value === '13', null, WAIT);
    assert.equal(await ada.page.isHidden('#fib-error'), true);
    assertClean(ada);
  });

  test('the own user is listed, highlighted and counted', async () => {
    const id = await ownUserId(ada.page);
    await waitForUser(ada.page, id);
    const row = await userRow(ada.page, id);
    assert.equal(row.name, 'Ada');
    assert.equal(row.isMe, true);
    assert.equal(await ada.page.textContent('#me strong'), 'Ada');
    assert.ok(Number(await ada.page.textContent('#online-count')) >= 1);
    assertClean(ada);
  });

  test('presence: a second page appears live, and disappears when it closes', async () => {
    const grace = await openPage(`${pulse.baseUrl}/?name=${encodeURIComponent('Grace Hopper')}`);
    try {
      const graceId = await ownUserId(grace.page);
      await waitForUser(ada.page, graceId);
      assert.equal((await userRow(ada.page, graceId)).name, 'Grace Hopper');
      assert.equal((await userRow(ada.page, graceId)).isMe, false);
      await ada.page.waitForFunction(() => document.querySelector('#online-count')?.textContent === '2', null, WAIT);
      assertClean(grace);
      await grace.context.close();
      await ada.page.waitForFunction(
        (gone) => !Array.from(document.querySelectorAll('#users li')).some((li) => li.getAttribute('data-user-id') === gone),
        graceId,
        WAIT,
      );
      await ada.page.waitForFunction(() => document.querySelector('#online-count')?.textContent === '1', null, WAIT);
    } finally {
      await grace.context.close();
    }
    assertClean(ada);
  });

  test('Disconnect closes with 1000, Connect opens again', async () => {
    await ada.page.click('#toggle-connection');
    await ada.page.waitForFunction(() => document.querySelector('#state')?.getAttribute('data-state') === 'closed', null, WAIT);
    assert.match((await ada.page.textContent('#state')) ?? '', /1000/);
    await ada.page.click('#toggle-connection');
    await waitOpen(ada.page);
    await waitForUser(ada.page, await ownUserId(ada.page));
    assertClean(ada);
  });

  test('a dropped connection shows its close code and reconnects by itself', async () => {
    const w = await openPage('about:blank');
    try {
      const routes: WebSocketRoute[] = [];
      await w.page.routeWebSocket(/\/ws(\?|$)/, (ws) => {
        routes.push(ws);
        ws.connectToServer();
      });
      await w.page.goto(`${pulse.baseUrl}/?name=Hedy`);
      await waitOpen(w.page);
      const id = await ownUserId(w.page);
      await waitForUser(w.page, id);
      // Record every state the page shows: the jittered delay may be only a few milliseconds.
      await w.page.evaluate(() => {
        const el = document.querySelector('#state');
        const seen: string[] = [];
        Object.assign(globalThis, { seenStates: seen });
        if (!el) throw new Error('no #state');
        // (no named helper functions in here: tsx would wrap them in a __name() the page lacks)
        new MutationObserver(() => seen.push(`${el.getAttribute('data-state')}: ${el.textContent}`)).observe(el, { childList: true, characterData: true, subtree: true, attributes: true });
      });
      await routes.at(-1)?.close({ code: 1013, reason: 'overloaded' });
      await w.page.waitForFunction(() => (globalThis as unknown as { seenStates: string[] }).seenStates.some((s) => s.startsWith('open')), null, WAIT);
      const seen = await w.page.evaluate(() => (globalThis as unknown as { seenStates: string[] }).seenStates);
      assert.ok(
        seen.some((s) => /^reconnecting: Reconnecting in \d+ s \(closed 1013 overloaded\)$/.test(s)),
        `states shown: ${seen.join(' | ')}`,
      );
      await waitOpen(w.page);
      assert.equal(routes.length, 2, 'one new connection');
      await waitForUser(w.page, id);
      assert.equal(await w.page.locator('#users.stale').count(), 0, 'the list is fresh again');
      assertClean(w);
    } finally {
      await w.context.close();
    }
  });

  test('an invalid ?name= is refused by the page before connecting', async () => {
    const bad = await openPage(`${pulse.baseUrl}/?name=${encodeURIComponent('no <tags> please')}`);
    try {
      await bad.page.waitForSelector('#name-error:not([hidden])', WAIT);
      assert.equal(await bad.page.getAttribute('#state', 'data-state'), 'closed');
      assert.equal(await bad.page.inputValue('#name'), 'no <tags> please');
      assertClean(bad);
    } finally {
      await bad.context.close();
    }
  });

  // The server refuses these names with HTTP 400, which a browser only sees as 1006: a page that
  // retried on 1006 would try forever. PulseClient checks the name first and never tries.
  for (const [label, badName, why] of [
    ['x² (a superscript is no decimal digit)', 'x²', /"²" is not allowed/],
    ['a name of 40 letters', 'a'.repeat(40), /40 characters/],
  ] as const) {
    test(`?name= ${label}: the page says why it cannot connect and stops trying`, async () => {
      const refusedBefore = await upgradesRejected(pulse.baseUrl);
      const bad = await openPage(`${pulse.baseUrl}/?name=${encodeURIComponent(badName)}`, { initScript: COUNT_WEBSOCKETS });
      try {
        await bad.page.waitForSelector('#name-error:not([hidden])', WAIT);
        const message = (await bad.page.textContent('#name-error')) ?? '';
        assert.match(message, why);
        assert.match(message, /a name is 1-32 letters, digits/);
        assert.match((await bad.page.textContent('#connection-error')) ?? '', /display name is not accepted/);
        assert.equal(await bad.page.isVisible('#connection-error'), true);
        assert.equal(await bad.page.getAttribute('#state', 'data-state'), 'closed');
        assert.equal(await bad.page.textContent('#toggle-connection'), 'Connect');
        // Long enough for a few backoff rounds (the first bound is 0.5 s): nothing more happens.
        await bad.page.waitForTimeout(2_000);
        assert.equal(await bad.page.getAttribute('#state', 'data-state'), 'closed');
        assert.equal(await webSocketsOpened(bad.page), 0, 'no WebSocket at all: the name is checked before');
        assert.ok((await upgradesRejected(pulse.baseUrl)) - refusedBefore <= 2, 'the server saw at most two attempts');
        assert.equal(await bad.page.inputValue('#name'), badName);
        assertClean(bad);
      } finally {
        await bad.context.close();
      }
    });
  }

  test('the name form refuses a bad name and keeps the connection it has', async () => {
    const page = await openPage(`${pulse.baseUrl}/?name=Katherine`);
    try {
      await waitOpen(page.page);
      await page.page.fill('#name', 'x²');
      await page.page.click('#name-form button[type="submit"]');
      await page.page.waitForSelector('#name-error:not([hidden])', WAIT);
      assert.match((await page.page.textContent('#name-error')) ?? '', /"²" is not allowed/);
      assert.equal(await page.page.getAttribute('#state', 'data-state'), 'open');
      assert.equal(await page.page.textContent('#me strong'), 'Katherine');
      assertClean(page);
    } finally {
      await page.context.close();
    }
  });

  test('the name form persists the name and reconnects under it', async () => {
    const page = await openPage(`${pulse.baseUrl}/`);
    try {
      await waitOpen(page.page);
      const guestId = await ownUserId(page.page);
      assert.match((await page.page.textContent('#me strong')) ?? '', /^guest-/);
      await page.page.fill('#name', 'Émilie du Châtelet');
      await page.page.click('#name-form button[type="submit"]');
      await page.page.waitForFunction(() => document.querySelector('#me strong')?.textContent === 'Émilie du Châtelet', null, WAIT);
      assert.notEqual(await ownUserId(page.page), guestId);
      assert.equal(await page.page.evaluate(() => localStorage.getItem('pulse.name')), 'Émilie du Châtelet');
      assertClean(page);
    } finally {
      await page.context.close();
    }
  });
});

browserSuite('web client, token mode: names are always text', { timeout: 240_000 }, () => {
  const secret = 'e2e-secret-that-is-long-enough-0123456789';
  let pulse: Awaited<ReturnType<typeof startPulse>>;

  const sign = (sub: string, name: string) =>
    new SignJWT({ name })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(secret));

  before(async () => {
    pulse = await startPulse({ AUTH_JWT_SECRET: secret });
  });
  after(async () => {
    await pulse?.stop();
  });

  test(`a user named ${EVIL_NAME} shows as those characters`, async () => {
    const alice = await openPage(`${pulse.baseUrl}/?token=${await sign('alice', 'Alice')}`);
    const evil = await openPage(`${pulse.baseUrl}/?token=${await sign('mallory', EVIL_NAME)}`);
    try {
      await waitOpen(alice.page);
      assert.equal(new URL(alice.page.url()).searchParams.has('token'), false, 'the token leaves the address bar');
      assert.equal(await ownUserId(alice.page), 'alice');
      await waitForUser(alice.page, 'mallory');
      const row = await userRow(alice.page, 'mallory');
      assert.equal(row.name, EVIL_NAME);
      assert.equal(await alice.page.locator('#users img').count(), 0, 'no <img> element inside #users');
      assert.equal(await alice.page.locator('img').count(), 0, 'no <img> element anywhere');

      // The evil user's own page shows its name as text too.
      assert.equal(await ownUserId(evil.page), 'mallory');
      assert.equal(await evil.page.textContent('#me strong'), EVIL_NAME);
      assert.equal((await userRow(evil.page, 'mallory')).name, EVIL_NAME);
      assert.equal(await evil.page.locator('img').count(), 0);

      // Give a would-be onerror handler time to fire.
      await alice.page.waitForTimeout(500);
      assertClean(alice);
      assertClean(evil);
    } finally {
      await alice.context.close();
      await evil.context.close();
    }
  });

  test('an expired token: the page shows the server\'s reason and stops trying', async () => {
    const expired = await new SignJWT({ name: 'Late' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('late')
      .setIssuedAt(Math.floor(Date.now() / 1000) - 3600)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(secret));
    const refusedBefore = await upgradesRejected(pulse.baseUrl);
    // Chromium reports the refused handshake and the pre-check's 401 on its own: expected here.
    const late = await openPage(`${pulse.baseUrl}/?token=${expired}`, {
      initScript: COUNT_WEBSOCKETS,
      ignoreConsole: /WebSocket connection to .* failed|status of 401/,
    });
    try {
      await late.page.waitForSelector('#connection-error:not([hidden])', WAIT);
      const message = (await late.page.textContent('#connection-error')) ?? '';
      assert.match(message, /token expired/);
      assert.match(message, /UNAUTHORIZED/);
      assert.equal(await late.page.getAttribute('#state', 'data-state'), 'closed');
      await late.page.waitForTimeout(2_000);
      assert.equal(await late.page.getAttribute('#state', 'data-state'), 'closed');
      assert.equal(await webSocketsOpened(late.page), 1, 'one attempt, explained by the pre-check, no retry');
      const refused = (await upgradesRejected(pulse.baseUrl)) - refusedBefore;
      assert.ok(refused >= 1 && refused <= 2, `the server refused ${refused} attempts: at least the one, at most two`);
      assert.deepEqual(late.problems.filter((p) => !/^HTTP 401 for .*\/api\/admission\?/.test(p)), []);
      assert.deepEqual(late.dialogs, []);
    } finally {
      await late.context.close();
    }
  });
});
