// Pulse web client: one WebSocket to /ws speaking JSON protocol v1 (docs/design.md §3).
// Plain ES module, no build step. The server sends a strict CSP, so this file never
// touches inline styles or innerHTML: state shows through classes, `hidden` and text.

const NAME_PATTERN = /^[\p{L}\p{N} ._-]{1,32}$/u;
const NAME_KEY = 'pulse.name';
const TOKEN_KEY = 'pulse.token';
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 15_000;
const STABLE_AFTER_MS = 5_000; // an open socket that lasts this long resets the backoff
const STALE_CLOCK_MS = 2_500;

const CLOSE_REASONS = {
  1000: 'normal closure',
  1001: 'server going away',
  1003: 'unsupported data',
  1005: 'no status',
  1006: 'connection lost',
  1007: 'invalid data',
  1008: 'policy violation',
  1009: 'message too big',
  1011: 'server error',
  1013: 'server overloaded',
};

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
};

const ui = {
  state: $('state'),
  toggle: $('toggle-connection'),
  clock: $('clock'),
  clockDate: $('clock-date'),
  clockUtc: $('clock-utc'),
  clockOffset: $('clock-offset'),
  fibForm: $('fib-form'),
  fibN: $('fib-n'),
  fibMax: $('fib-max'),
  fibError: $('fib-error'),
  fibLabel: $('fib-label'),
  fibDigits: $('fib-digits'),
  fibDigitsUnit: $('fib-digits-unit'),
  fibTiming: $('fib-timing'),
  fibValue: $('fib-value'),
  fibCopy: $('fib-copy'),
  fibStatus: $('fib-status'),
  users: $('users'),
  usersNote: $('users-note'),
  onlineCount: $('online-count'),
  me: $('me'),
  nameForm: $('name-form'),
  name: $('name'),
  nameError: $('name-error'),
  tokenNote: $('token-note'),
};

const numberFormat = new Intl.NumberFormat();
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dateFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
const shortTimeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

// ---------------------------------------------------------------- storage helpers

function storageGet(storage, key) {
  try {
    return storage?.getItem(key) ?? null;
  } catch {
    return null; // storage disabled (privacy mode, sandboxed frame)
  }
}

function storageSet(storage, key, value) {
  try {
    if (value === null) storage?.removeItem(key);
    else storage?.setItem(key, value);
  } catch {
    // best effort only
  }
}

const sessionStore = globalThis.sessionStorage;

// ---------------------------------------------------------------- identity

/** Returns an error message, or '' when the name is acceptable ('' itself means "guest"). */
function nameProblem(name) {
  if (name === '') return '';
  if ([...name].length > 32) return 'A name has at most 32 characters.';
  if (!NAME_PATTERN.test(name)) return 'Use only letters, digits, spaces, ".", "_" or "-".';
  return '';
}

const pageParams = new URLSearchParams(location.search);
let token = pageParams.get('token');
if (token) {
  // Keep the token for this tab only, and out of the address bar, history and screenshots.
  storageSet(sessionStore, TOKEN_KEY, token);
  pageParams.delete('token');
  const rest = pageParams.toString();
  globalThis.history?.replaceState(null, '', `${location.pathname}${rest ? `?${rest}` : ''}${location.hash}`);
} else {
  token = storageGet(sessionStore, TOKEN_KEY);
}

let name = (pageParams.get('name') ?? storageGet(localStorage, NAME_KEY) ?? '').trim();
ui.name.value = name;

if (token) {
  ui.nameForm.hidden = true;
  ui.tokenNote.hidden = false;
}

function showNameError(message) {
  ui.nameError.textContent = message;
  ui.nameError.hidden = message === '';
  ui.name.setAttribute('aria-invalid', message === '' ? 'false' : 'true');
}

// ---------------------------------------------------------------- connection

let socket = null;
let wanted = true; // false after the user pressed Disconnect
let attempt = 0;
let reconnectAt = 0;
let reconnectTimer = 0;
let countdownTimer = 0;
let stableTimer = 0;
let lastClose = '';
let me = null;
let limits = { maxN: 1_000_000 };

function setState(state, text) {
  ui.state.dataset.state = state;
  ui.state.textContent = text;
  ui.toggle.textContent = state === 'closed' ? 'Connect' : 'Disconnect';
  document.body.dataset.connection = state;
}

function describeClose(code, reason) {
  const known = CLOSE_REASONS[code];
  const detail = reason || known || '';
  return detail ? `${code} ${detail}` : String(code);
}

function socketUrl() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const query = new URLSearchParams();
  if (token) query.set('token', token);
  else if (name) query.set('name', name);
  const qs = query.toString();
  return `${scheme}://${location.host}/ws${qs ? `?${qs}` : ''}`;
}

function clearTimers() {
  clearTimeout(reconnectTimer);
  clearInterval(countdownTimer);
  clearTimeout(stableTimer);
  reconnectTimer = 0;
  countdownTimer = 0;
  stableTimer = 0;
}

function connect() {
  clearTimers();
  if (!token) {
    const problem = nameProblem(name);
    showNameError(problem);
    if (problem) {
      wanted = false;
      setState('closed', 'Not connected: fix the display name');
      return;
    }
  }
  wanted = true;
  setState('connecting', 'Connecting…');
  let ws;
  try {
    ws = new WebSocket(socketUrl());
  } catch (err) {
    lastClose = String(err?.message ?? err);
    scheduleReconnect();
    return;
  }
  socket = ws;
  ws.addEventListener('open', () => {
    if (socket !== ws) return;
    setState('open', 'Open');
    stableTimer = setTimeout(() => {
      attempt = 0;
    }, STABLE_AFTER_MS);
    requestUsers();
  });
  ws.addEventListener('message', (event) => {
    if (socket !== ws) return;
    if (typeof event.data === 'string') handleFrame(event.data);
  });
  ws.addEventListener('close', (event) => {
    if (socket !== ws) return;
    socket = null;
    clearTimeout(stableTimer);
    onDisconnected();
    lastClose = describeClose(event.code, event.reason);
    if (wanted) scheduleReconnect();
    else setState('closed', `Closed (${lastClose})`);
  });
}

function scheduleReconnect() {
  clearTimers();
  // Full jitter: a random delay between 0 and the capped exponential bound.
  const bound = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  const delay = Math.round(Math.random() * bound);
  attempt += 1;
  reconnectAt = Date.now() + delay;
  const tick = () => {
    const seconds = Math.max(0, Math.ceil((reconnectAt - Date.now()) / 1000));
    setState('reconnecting', `Reconnecting in ${seconds} s${lastClose ? ` (closed ${lastClose})` : ''}`);
  };
  tick();
  countdownTimer = setInterval(tick, 250);
  reconnectTimer = setTimeout(connect, delay);
}

function disconnect(code = 1000, reason = 'bye') {
  const ws = socket;
  socket = null;
  clearTimers();
  if (ws && ws.readyState <= WebSocket.OPEN) ws.close(code, reason);
  onDisconnected();
}

function send(message) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  return true;
}

function onDisconnected() {
  ui.users.classList.add('stale');
  ui.clock.classList.add('stale');
  if (pendingFib) {
    pendingFib = null;
    ui.fibStatus.textContent = 'The connection closed before the answer arrived.';
    setFibBusy(false);
  }
}

ui.toggle.addEventListener('click', () => {
  if (ui.state.dataset.state === 'closed') {
    attempt = 0;
    connect();
  } else {
    wanted = false;
    disconnect();
    setState('closed', 'Closed (1000 by you)');
  }
});

window.addEventListener('online', () => {
  if (wanted && !socket) {
    attempt = 0;
    connect();
  }
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
  storageSet(localStorage, NAME_KEY, name === '' ? null : name);
  if (pageParams.has('name')) {
    // The form wins from now on: drop the preset so a reload keeps the chosen name.
    pageParams.delete('name');
    const rest = pageParams.toString();
    globalThis.history?.replaceState(null, '', `${location.pathname}${rest ? `?${rest}` : ''}${location.hash}`);
  }
  disconnect(1000, 'renamed');
  attempt = 0;
  connect();
});

// ---------------------------------------------------------------- frames

function handleFrame(text) {
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    return;
  }
  if (!msg || typeof msg !== 'object') return;
  switch (msg.type) {
    case 'welcome':
      return onWelcome(msg);
    case 'time':
      return showTime(msg.now);
    case 'fibonacci':
      return onFibonacci(msg);
    case 'users':
      return onUsers(msg);
    case 'presence':
      return onPresence(msg);
    case 'error':
      return onError(msg);
    default:
      return undefined;
  }
}

function onWelcome(msg) {
  me = msg.user && typeof msg.user.id === 'string' ? { id: msg.user.id, name: String(msg.user.name ?? '') } : null;
  if (msg.limits && Number.isSafeInteger(msg.limits.maxN)) {
    limits = msg.limits;
    ui.fibMax.textContent = numberFormat.format(limits.maxN);
  }
  renderMe();
  if (msg.now) showTime(msg.now, false);
  renderUsers();
}

// ---------------------------------------------------------------- clock

let lastTickAt = 0;

function showTime(iso, onTheSecond = true) {
  const date = new Date(iso);
  const ms = date.getTime();
  if (Number.isNaN(ms)) return;
  lastTickAt = Date.now();
  ui.clock.textContent = timeFormat.format(date);
  ui.clock.setAttribute('datetime', date.toISOString());
  ui.clock.classList.remove('stale');
  ui.clockDate.textContent = dateFormat.format(date);
  ui.clockUtc.textContent = date.toISOString().replace('T', ' ').replace('Z', ' Z');
  if (!onTheSecond) return;
  // How long after the server's second this page saw the tick: network delay plus any clock difference.
  const lag = lastTickAt - ms;
  if (lag >= 0 && lag < 1000) ui.clockOffset.textContent = `${lag} ms after the second`;
  else if (lag < 0 && lag > -1000) ui.clockOffset.textContent = `your device clock is ${-lag} ms behind`;
  else ui.clockOffset.textContent = `your device clock is ${(Math.abs(lag) / 1000).toFixed(1)} s ${lag > 0 ? 'ahead' : 'behind'}`;
}

setInterval(() => {
  if (lastTickAt && Date.now() - lastTickAt > STALE_CLOCK_MS) ui.clock.classList.add('stale');
}, 1000);

// ---------------------------------------------------------------- fibonacci

let fibCounter = 0;
let pendingFib = null; // { id, n, sentAt }

/** Normalises an integer typed by the user into JSON number text, or returns null. */
function parseInteger(text) {
  const m = /^\s*([+-]?)(\d+)\s*$/.exec(text);
  if (!m) return null;
  const digits = m[2].replace(/^0+(?=\d)/, '');
  return (m[1] === '-' && digits !== '0' ? '-' : '') + digits;
}

function setFibBusy(busy) {
  ui.fibForm.setAttribute('aria-busy', busy ? 'true' : 'false');
  ui.fibValue.classList.toggle('busy', busy);
}

function showFibError(text) {
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
  const id = String(++fibCounter);
  // Built as text so that any integer reaches the server exactly; the server judges the range.
  const frame = `{"type":"fibonacci","n":${n},"id":${JSON.stringify(id)}}`;
  if (!send(frame)) {
    showFibError('Not connected. The request will work once the connection is open again.');
    return;
  }
  showFibError('');
  pendingFib = { id, n, sentAt: performance.now() };
  setFibBusy(true);
  ui.fibStatus.textContent = `Computing F(${n})…`;
});

function onFibonacci(msg) {
  if (!pendingFib || msg.id !== pendingFib.id) return; // an older request: superseded
  const elapsed = performance.now() - pendingFib.sentAt;
  pendingFib = null;
  setFibBusy(false);
  const value = String(msg.value ?? '');
  ui.fibLabel.textContent = `F(${msg.n})`;
  ui.fibDigits.textContent = numberFormat.format(Number(msg.digits));
  ui.fibDigitsUnit.textContent = Number(msg.digits) === 1 ? 'digit' : 'digits';
  ui.fibTiming.textContent = ` · ${Math.round(elapsed)} ms round trip`;
  ui.fibValue.classList.toggle('long', value.length > 240);
  ui.fibValue.value = value; // set once; the textarea scrolls on its own
  ui.fibValue.scrollTop = 0;
  ui.fibCopy.disabled = value === '';
  ui.fibCopy.textContent = 'Copy';
  ui.fibStatus.textContent = '';
}

ui.fibCopy.addEventListener('click', async () => {
  const value = ui.fibValue.value;
  let copied = false;
  try {
    if (navigator.clipboard && globalThis.isSecureContext) {
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

// ---------------------------------------------------------------- users and presence

const users = new Map(); // id -> { id, name, sessions, since }
let online = 0;
let usersCounter = 0;
let usersTruncated = false;

function requestUsers() {
  send({ type: 'users', id: `u${++usersCounter}` });
}

function onUsers(msg) {
  if (!Array.isArray(msg.users)) return;
  users.clear();
  for (const u of msg.users) {
    if (u && typeof u.id === 'string') users.set(u.id, { id: u.id, name: String(u.name ?? u.id), sessions: u.sessions, since: u.since });
  }
  online = Number.isSafeInteger(msg.online) ? msg.online : users.size;
  usersTruncated = msg.truncated === true;
  ui.users.classList.remove('stale');
  renderUsers();
}

function onPresence(msg) {
  for (const u of Array.isArray(msg.left) ? msg.left : []) {
    if (u && typeof u.id === 'string') users.delete(u.id);
  }
  for (const u of Array.isArray(msg.joined) ? msg.joined : []) {
    if (u && typeof u.id === 'string' && !users.has(u.id)) {
      users.set(u.id, { id: u.id, name: String(u.name ?? u.id), sessions: 1, since: new Date().toISOString() });
    }
  }
  if (Number.isSafeInteger(msg.online)) online = msg.online;
  renderUsers();
  if (msg.truncated === true) requestUsers();
}

function onError(msg) {
  const text = `${msg.code ?? 'ERROR'}: ${msg.message ?? 'something went wrong'}`;
  if (pendingFib && (msg.id === pendingFib.id || msg.id === null || msg.id === undefined)) {
    pendingFib = null;
    setFibBusy(false);
    ui.fibStatus.textContent = '';
    showFibError(text);
  } else if (typeof msg.id === 'string' && msg.id.startsWith('u')) {
    ui.usersNote.textContent = `Could not load the list: ${text}`;
    ui.usersNote.hidden = false;
  } else {
    showFibError(text);
  }
}

/** A stable colour slot (0–7) for a user id, so avatars keep their colour across renders. */
function hueSlot(id) {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return h % 8;
}

function initial(text) {
  const first = [...text.trim()][0] ?? '?';
  return first.toLocaleUpperCase();
}

function formatSince(since) {
  const d = new Date(since);
  return Number.isNaN(d.getTime()) ? '' : `since ${shortTimeFormat.format(d)}`;
}

function renderMe() {
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

function byName(a, b) {
  return a.name.localeCompare(b.name) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function renderUsers() {
  const frag = document.createDocumentFragment();
  for (const u of [...users.values()].sort(byName)) {
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
    const parts = [];
    if (Number.isSafeInteger(u.sessions) && u.sessions > 1) parts.push(`${u.sessions} sessions`);
    if (u.since) parts.push(formatSince(u.since));
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
  ui.onlineCount.textContent = numberFormat.format(online);
  const hiddenCount = online - users.size;
  if (usersTruncated && hiddenCount > 0) {
    ui.usersNote.textContent = `Showing ${numberFormat.format(users.size)} of ${numberFormat.format(online)}.`;
    ui.usersNote.hidden = false;
  } else {
    ui.usersNote.hidden = true;
  }
}

// ---------------------------------------------------------------- go

connect();
