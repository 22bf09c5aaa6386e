// Pulse's web page: the clock, the Fibonacci form and who is online, over one PulseClient.
// What the protocol says (the name rule, close codes, when to reconnect, request ids, the online
// list) comes from src/client and src/protocol: this file only shows it. scripts/build-web.ts
// bundles it into dist/web/app.js. The server sends a strict CSP, so nothing here touches inline
// styles or innerHTML: state shows through classes, `hidden` and text.

import {
  CLOSE_CODE_MEANING,
  NAME_PATTERN,
  NAME_RULE,
  PulseClient,
  type ClientState,
  type OnlineEntry,
  type PulseError,
  type RetryInfo,
  type UserRef,
  type WelcomeFrame,
} from '../src/client/index.js';

const NAME_KEY = 'pulse.name';
const TOKEN_KEY = 'pulse.token';
const STALE_CLOCK_MS = 2_500;

function $<T extends HTMLElement>(id: string, type: abstract new () => T): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`missing #${id}`);
  return el;
}

const ui = {
  state: $('state', HTMLElement),
  toggle: $('toggle-connection', HTMLButtonElement),
  connectionError: $('connection-error', HTMLElement),
  clock: $('clock', HTMLTimeElement),
  clockDate: $('clock-date', HTMLElement),
  clockUtc: $('clock-utc', HTMLElement),
  clockOffset: $('clock-offset', HTMLElement),
  fibForm: $('fib-form', HTMLFormElement),
  fibN: $('fib-n', HTMLInputElement),
  fibMax: $('fib-max', HTMLElement),
  fibError: $('fib-error', HTMLElement),
  fibLabel: $('fib-label', HTMLElement),
  fibDigits: $('fib-digits', HTMLElement),
  fibDigitsUnit: $('fib-digits-unit', HTMLElement),
  fibTiming: $('fib-timing', HTMLElement),
  fibValue: $('fib-value', HTMLTextAreaElement),
  fibCopy: $('fib-copy', HTMLButtonElement),
  fibStatus: $('fib-status', HTMLElement),
  users: $('users', HTMLUListElement),
  usersNote: $('users-note', HTMLElement),
  onlineCount: $('online-count', HTMLElement),
  me: $('me', HTMLElement),
  nameForm: $('name-form', HTMLFormElement),
  name: $('name', HTMLInputElement),
  nameError: $('name-error', HTMLElement),
  tokenNote: $('token-note', HTMLElement),
};

const numberFormat = new Intl.NumberFormat();
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dateFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
const shortTimeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

// ---------------------------------------------------------------- storage

// Reading `localStorage` itself throws where storage is disabled (privacy mode, sandboxed frame).
function storageGet(storage: () => Storage, key: string): string | null {
  try {
    return storage().getItem(key);
  } catch {
    return null;
  }
}

function storageSet(storage: () => Storage, key: string, value: string | null): void {
  try {
    if (value === null) storage().removeItem(key);
    else storage().setItem(key, value);
  } catch {
    // best effort only
  }
}

const session = () => sessionStorage;
const local = () => localStorage;

// ---------------------------------------------------------------- identity

const pageParams = new URLSearchParams(location.search);

function replaceQuery(): void {
  const rest = pageParams.toString();
  history.replaceState(null, '', `${location.pathname}${rest ? `?${rest}` : ''}${location.hash}`);
}

let token = pageParams.get('token');
if (token) {
  // Kept for this tab only, and out of the address bar, the history and screenshots.
  storageSet(session, TOKEN_KEY, token);
  pageParams.delete('token');
  replaceQuery();
} else {
  token = storageGet(session, TOKEN_KEY);
}

let name = (pageParams.get('name') ?? storageGet(local, NAME_KEY) ?? '').trim();
ui.name.value = name;
if (token) {
  ui.nameForm.hidden = true;
  ui.tokenNote.hidden = false;
}

/**
 * Why `name` breaks the server's rule, in words, or '' when it does not ('' itself asks for a
 * guest name). The rule is one of allowed characters, so it also tells which characters are not.
 */
function nameProblem(candidate: string): string {
  if (candidate === '' || NAME_PATTERN.test(candidate)) return '';
  const chars = [...candidate];
  const refused = [...new Set(chars.filter((ch) => !NAME_PATTERN.test(ch)))];
  const what =
    refused.length > 0
      ? `${refused.map((ch) => JSON.stringify(ch)).join(', ')} ${refused.length === 1 ? 'is' : 'are'} not allowed`
      : `it has ${chars.length} characters`;
  return `This name cannot be used: ${what} (${NAME_RULE}).`;
}

function showNameError(message: string): void {
  ui.nameError.textContent = message;
  ui.nameError.hidden = message === '';
  ui.name.setAttribute('aria-invalid', message === '' ? 'false' : 'true');
}

// ---------------------------------------------------------------- connection

let client: PulseClient | undefined;
let closedByUser = false;
let me: UserRef | undefined;
let countdownTimer: ReturnType<typeof setInterval> | undefined;

const endpoint = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;

/** A new client for the current identity; the previous one, if any, is closed and forgotten. */
function startClient(): void {
  client?.close();
  const current = new PulseClient(token ? { url: endpoint, getToken: () => token ?? '' } : { url: endpoint, name: name || undefined });
  client = current;
  // A closed client's late events must not touch the page: only the current one's get through.
  const only =
    <T>(show: (payload: T) => void) =>
    (payload: T) => {
      if (client === current) show(payload);
    };
  current.on('state', only(onState));
  current.on('retry', only(onRetry));
  current.on('error', only(onClientError));
  current.on('welcome', only(onWelcome));
  current.on('time', only((frame) => showTime(frame.now, frame.epochMs)));
  current.on('online', only(renderUsers));
  connect(current);
}

function connect(target: PulseClient): void {
  closedByUser = false;
  showConnectionError('');
  // A refusal also arrives as an 'error' event, which onClientError shows.
  target.connect().catch(() => undefined);
}

function showState(state: ClientState, text: string, title = ''): void {
  ui.state.dataset.state = state;
  ui.state.textContent = text;
  ui.state.title = title;
}

function onState(state: ClientState): void {
  clearInterval(countdownTimer);
  countdownTimer = undefined;
  ui.toggle.textContent = state === 'closed' ? 'Connect' : 'Disconnect';
  document.body.dataset.connection = state;
  if (state !== 'open') {
    ui.users.classList.add('stale');
    ui.clock.classList.add('stale');
  }
  if (state === 'connecting') showState(state, 'Connecting…');
  else if (state === 'open') showState(state, 'Open');
  else if (state === 'reconnecting') showState(state, 'Reconnecting…');
  else showState(state, closedByUser ? 'Closed (1000 by you)' : 'Closed');
}

/** Retrying can fix this: a countdown to the next attempt, and why the last one ended. */
function onRetry({ delayMs, error, close }: RetryInfo): void {
  const reason = close
    ? `closed ${close.code} ${close.reason || CLOSE_CODE_MEANING[close.code] || ''}`.trim()
    : error.code === 'DISCONNECTED'
      ? 'could not connect'
      : `${error.code}: ${error.message}`;
  const at = Date.now() + delayMs;
  let first = true;
  const tick = () => {
    const left = at - Date.now();
    const when = left > 0 || first ? `in ${Math.max(0, Math.ceil(left / 1000))} s` : 'now…';
    first = false;
    showState('reconnecting', `Reconnecting ${when} (${reason})`, error.message);
  };
  clearInterval(countdownTimer);
  tick();
  countdownTimer = setInterval(tick, 250);
}

function onClientError(error: PulseError): void {
  const state = client?.state;
  if (state === 'closed') {
    // The client stopped for good: retrying cannot fix this, so say why and stop.
    showState('closed', 'Not connected', error.message);
    if (error.code === 'INVALID_NAME' && !token) {
      showNameError(nameProblem(name) || `This name cannot be used: ${error.message}`);
      showConnectionError(`Not connecting: the display name is not accepted. Choose another one below.`);
    } else {
      showConnectionError(`Cannot connect: ${error.message} (${error.code}).${error.code === 'UNAUTHORIZED' && token ? ' Open the page with a new ?token=.' : ''}`);
    }
  } else if (state === 'open') {
    // An error the server sent that answers no request of this page.
    showFibError(`${error.code}: ${error.message}`);
  }
  // Otherwise the connection dropped or was refused for now: onRetry shows it.
}

function showConnectionError(message: string): void {
  ui.connectionError.textContent = message;
  ui.connectionError.hidden = message === '';
}

function onWelcome(welcome: WelcomeFrame): void {
  me = welcome.user;
  ui.fibMax.textContent = numberFormat.format(welcome.limits.maxN);
  renderMe();
  showTime(welcome.now);
  renderUsers(client?.online ?? []);
}

ui.toggle.addEventListener('click', () => {
  if (!client) return;
  if (client.state === 'closed') {
    connect(client);
  } else {
    closedByUser = true;
    client.close();
  }
});

// The network is back: try at once rather than at the end of the backoff.
addEventListener('online', () => {
  if (client?.state !== 'reconnecting') return;
  client.close();
  connect(client);
});

ui.nameForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const next = ui.name.value.trim();
  const problem = nameProblem(next);
  showNameError(problem);
  if (problem) {
    ui.name.focus();
    return;
  }
  name = next;
  storageSet(local, NAME_KEY, name === '' ? null : name);
  if (pageParams.has('name')) {
    // The form wins from now on: drop the preset so that a reload keeps the chosen name.
    pageParams.delete('name');
    replaceQuery();
  }
  startClient();
});

// ---------------------------------------------------------------- clock

let lastTickAt = 0;

/** `epochMs`: the second boundary of a tick, to show how late it arrived; absent for the welcome. */
function showTime(iso: string, epochMs?: number): void {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return;
  lastTickAt = Date.now();
  ui.clock.textContent = timeFormat.format(date);
  ui.clock.dateTime = date.toISOString();
  ui.clock.classList.remove('stale');
  ui.clockDate.textContent = dateFormat.format(date);
  ui.clockUtc.textContent = date.toISOString().replace('T', ' ').replace('Z', ' Z');
  if (epochMs === undefined) return;
  // How long after the server's second this page saw the tick: network delay plus any clock difference.
  const lag = lastTickAt - epochMs;
  if (lag >= 0 && lag < 1000) ui.clockOffset.textContent = `${lag} ms after the second`;
  else if (lag < 0 && lag > -1000) ui.clockOffset.textContent = `your device clock is ${-lag} ms behind`;
  else ui.clockOffset.textContent = `your device clock is ${(Math.abs(lag) / 1000).toFixed(1)} s ${lag > 0 ? 'ahead' : 'behind'}`;
}

setInterval(() => {
  if (lastTickAt && Date.now() - lastTickAt > STALE_CLOCK_MS) ui.clock.classList.add('stale');
}, 1000);

// ---------------------------------------------------------------- fibonacci

/** The latest request: answers to older ones are superseded and not shown. */
let fibRequest = 0;

/** An integer typed by the user, as a bigint so that it reaches the server exactly; null if it is not one. */
function parseInteger(text: string): bigint | null {
  return /^\s*[+-]?\d+\s*$/.test(text) ? BigInt(text.trim()) : null;
}

function setFibBusy(busy: boolean): void {
  ui.fibForm.setAttribute('aria-busy', busy ? 'true' : 'false');
  ui.fibValue.classList.toggle('busy', busy);
}

function showFibError(text: string): void {
  ui.fibError.textContent = text;
  ui.fibError.hidden = text === '';
  ui.fibN.setAttribute('aria-invalid', text === '' ? 'false' : 'true');
}

ui.fibForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const n = parseInteger(ui.fibN.value);
  if (n === null) {
    showFibError('Please enter a whole number, such as 42 or -7.');
    ui.fibN.focus();
    return;
  }
  if (client?.state !== 'open') {
    showFibError('Not connected. The request will work once the connection is open again.');
    return;
  }
  showFibError('');
  const request = ++fibRequest;
  const sentAt = performance.now();
  setFibBusy(true);
  ui.fibStatus.textContent = `Computing F(${n})…`; // the server judges the range
  client.fibonacci(n).then(
    (answer) => {
      if (request !== fibRequest) return;
      setFibBusy(false);
      ui.fibLabel.textContent = `F(${answer.n})`;
      ui.fibDigits.textContent = numberFormat.format(answer.digits);
      ui.fibDigitsUnit.textContent = answer.digits === 1 ? 'digit' : 'digits';
      ui.fibTiming.textContent = ` · ${Math.round(performance.now() - sentAt)} ms round trip`;
      ui.fibValue.classList.toggle('long', answer.value.length > 240);
      ui.fibValue.value = answer.value; // set once; the textarea scrolls on its own
      ui.fibValue.scrollTop = 0;
      ui.fibCopy.disabled = answer.value === '';
      ui.fibCopy.textContent = 'Copy';
      ui.fibStatus.textContent = '';
    },
    (error: PulseError) => {
      if (request !== fibRequest) return;
      setFibBusy(false);
      if (error.code === 'DISCONNECTED') {
        ui.fibStatus.textContent = 'The connection closed before the answer arrived.';
      } else {
        ui.fibStatus.textContent = '';
        showFibError(`${error.code}: ${error.message}`);
      }
    },
  );
});

ui.fibCopy.addEventListener('click', async () => {
  const value = ui.fibValue.value;
  let copied = false;
  try {
    if (navigator.clipboard && isSecureContext) {
      await navigator.clipboard.writeText(value);
      copied = true;
    }
  } catch {
    copied = false;
  }
  if (!copied) {
    ui.fibValue.focus();
    ui.fibValue.select();
    try {
      copied = document.execCommand('copy');
    } catch {
      copied = false;
    }
  }
  ui.fibCopy.textContent = copied ? 'Copied' : 'Selected: press Ctrl+C';
  setTimeout(() => {
    ui.fibCopy.textContent = 'Copy';
  }, 2000);
});

// ---------------------------------------------------------------- who is online

/** When this page first saw users who joined after the snapshot (presence messages carry no time). */
const firstSeen = new Map<string, string>();

/** A stable colour slot (0–7) for a user id, so that avatars keep their colour across renders. */
function hueSlot(id: string): number {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return h % 8;
}

function initial(text: string): string {
  return ([...text.trim()][0] ?? '?').toLocaleUpperCase();
}

function formatSince(since: string): string {
  const d = new Date(since);
  return Number.isNaN(d.getTime()) ? '' : `since ${shortTimeFormat.format(d)}`;
}

function renderMe(): void {
  ui.me.replaceChildren();
  if (!me) {
    ui.me.textContent = 'Not connected yet.';
    delete ui.me.dataset.userId;
    return;
  }
  ui.me.dataset.userId = me.id;
  const strong = document.createElement('strong');
  strong.textContent = me.name;
  ui.me.append('You are ', strong);
}

function renderUsers(users: readonly OnlineEntry[]): void {
  if (client?.state === 'open') ui.users.classList.remove('stale');
  const frag = document.createDocumentFragment();
  for (const u of users) {
    const li = document.createElement('li');
    li.className = 'user';
    li.dataset.userId = u.id;

    const avatar = document.createElement('span');
    avatar.className = `avatar hue-${hueSlot(u.id)}`;
    avatar.setAttribute('aria-hidden', 'true');
    avatar.textContent = initial(u.name);

    const label = document.createElement('span');
    label.className = 'user-name';
    label.textContent = u.name;

    const meta = document.createElement('span');
    meta.className = 'user-meta';
    const since = u.since ?? firstSeen.get(u.id) ?? new Date().toISOString();
    if (!u.since) firstSeen.set(u.id, since);
    const parts: string[] = [];
    if (u.sessions !== undefined && u.sessions > 1) parts.push(`${u.sessions} sessions`);
    parts.push(formatSince(since));
    meta.textContent = parts.filter(Boolean).join(' · ');

    li.append(avatar, label);
    if (me && u.id === me.id) {
      li.classList.add('is-me');
      li.setAttribute('aria-current', 'true');
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = 'you';
      li.append(badge);
    }
    li.append(meta);
    frag.append(li);
  }
  ui.users.replaceChildren(frag);
  if (firstSeen.size > 0) {
    const present = new Set(users.map((u) => u.id));
    for (const id of firstSeen.keys()) if (!present.has(id)) firstSeen.delete(id);
  }
  const online = client?.onlineCount ?? users.length;
  ui.onlineCount.textContent = numberFormat.format(online);
  if (online > users.length) {
    ui.usersNote.textContent = `Showing ${numberFormat.format(users.length)} of ${numberFormat.format(online)}.`;
    ui.usersNote.hidden = false;
  } else {
    ui.usersNote.hidden = true;
  }
}

// ---------------------------------------------------------------- go

startClient();
