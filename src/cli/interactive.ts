// Interactive mode: a live clock, who joins and leaves, and answers to what the user types.
// PulseClient keeps the connection (reconnects, silence detection, requests, the online count);
// this session decides what each of its events looks like, and what each line typed asks.
// Follow a session: start() → connect → welcome (questions typed meanwhile are asked) → ticks,
// presence, answers → a drop: retry (or, once input has ended, exit 2) → end of input: the
// answers still due are awaited → finish().

import { createInterface, type Interface } from 'node:readline';
import { PulseError, type PulseClient } from '../client/index.js';
import type { PresenceFrame, ServerFrame, TimeFrame, WelcomeFrame } from '../protocol/frames.js';
import type { CliOptions } from './args.js';
import { createClient } from './client.js';
import { EXIT_CONNECTION, EXIT_OK } from './exit-codes.js';
import {
  describeFailure,
  displayUrl,
  formatAnswer,
  formatClock,
  formatError,
  formatPresence,
  formatReconnecting,
  formatStatus,
  formatUnanswered,
  formatWelcome,
  sanitize,
} from './format.js';
import { readLine, type Question } from './questions.js';
import { Screen, type Terminal } from './screen.js';

/** After end of input, how long to wait for the answers still due. */
const DRAIN_MS = 15_000;
/** Questions kept while not connected; more are dropped. */
const MAX_QUEUED = 100;

const HELP = [
  'type an integer for its Fibonacci number, e.g. 10',
  '/users   who is online',
  '{...}    send a raw JSON frame',
  '/quit    exit (also Ctrl-C, Ctrl-D)',
];

export function runInteractive(opts: CliOptions, term: Terminal): Promise<number> {
  return new Promise((resolve) => new InteractiveSession(opts, term, resolve).start());
}

class InteractiveSession {
  private readonly client: PulseClient;
  private readonly rl: Interface;
  private readonly screen: Screen;
  /** The user types on a terminal: a prompt with line editing. */
  private readonly typing: boolean;
  private readonly shownUrl: string;
  /** Questions typed while not connected, asked as soon as the connection opens. */
  private readonly queue: Question[] = [];
  /** Questions asked whose answer has not come yet. */
  private unanswered = 0;
  private clock = '';
  private stateText = 'connecting…';
  private online: number | undefined;
  /** Reconnect attempts since the last welcome. */
  private attempt = 0;
  private connected = false;
  private inputEnded = false;
  private finished = false;
  private drainTimer: NodeJS.Timeout | undefined;
  private readonly onSignal = () => this.finish(EXIT_OK);

  constructor(
    private readonly opts: CliOptions,
    term: Terminal,
    private readonly exit: (code: number) => void,
  ) {
    this.typing = !opts.json && term.input.isTTY === true && term.output.isTTY === true;
    this.rl = createInterface(
      this.typing ? { input: term.input, output: term.output, terminal: true, historySize: 100 } : { input: term.input, terminal: false },
    );
    this.screen = new Screen(term, this.typing ? this.rl : null, !opts.json && term.output.isTTY === true, opts.json);
    this.client = createClient(opts, { interactive: true });
    this.shownUrl = displayUrl(opts.url);
  }

  start(): void {
    this.listenToClient();
    this.listenToInput();
    this.refreshStatus();
    // A failure that ends the session is reported by the 'error' event (showError).
    this.client.connect().catch(() => undefined);
  }

  private listenToClient(): void {
    const client = this.client;
    if (this.opts.json) client.on('frame', (frame) => this.screen.frame(JSON.stringify(frame)));
    client.on('welcome', (welcome) => this.showWelcome(welcome));
    client.on('time', (time) => this.showTime(time));
    client.on('presence', (presence) => this.showPresence(presence));
    client.on('online', () => this.showOnlineCount());
    client.on('retry', ({ error, delayMs }) => this.showRetry(error, delayMs));
    client.on('error', (error) => this.showError(error));
  }

  private listenToInput(): void {
    this.rl.on('line', (line) => this.onLine(line));
    this.rl.on('close', () => this.onInputEnd());
    this.rl.on('SIGINT', this.onSignal);
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  // ------------------------------------------------------------------ what the client reports

  private showWelcome(welcome: WelcomeFrame): void {
    this.attempt = 0;
    this.connected = true;
    this.stateText = '';
    if (!this.opts.json) this.screen.print(formatWelcome(welcome, this.shownUrl));
    for (const question of this.queue.splice(0)) this.send(question);
    this.refreshStatus();
  }

  private showTime(time: TimeFrame): void {
    this.clock = formatClock(time.now);
    // A live terminal shows the clock in the status line; elsewhere each tick is a line.
    if (!this.opts.json && !this.screen.live) this.screen.print(`time ${this.clock}`);
    this.refreshStatus();
  }

  private showPresence(presence: PresenceFrame): void {
    if (!this.opts.json) for (const line of formatPresence(presence)) this.screen.print(line);
  }

  private showOnlineCount(): void {
    this.online = this.client.onlineCount;
    this.refreshStatus();
  }

  /** The connection dropped or an attempt failed; PulseClient tries again after `delayMs`. */
  private showRetry(reason: PulseError, delayMs: number): void {
    const why = this.connected ? `disconnected: ${sanitize(reason.message)}` : describeFailure(reason, this.shownUrl);
    this.connected = false;
    this.online = undefined;
    if (this.inputEnded) {
      // Nobody will type again: the answers still due are lost with the connection.
      this.screen.printError(why);
      this.finish(EXIT_CONNECTION);
      return;
    }
    this.stateText = formatReconnecting(delayMs, ++this.attempt);
    this.screen.note(`${why}; ${this.stateText}`);
    this.refreshStatus();
  }

  private showError(error: PulseError): void {
    if (this.client.state === 'closed') {
      // PulseClient stopped: a refusal that retrying cannot fix (a name, a token, an origin).
      this.screen.printError(describeFailure(error, this.shownUrl));
      this.finish(EXIT_CONNECTION);
    } else if (this.client.state === 'open' && !this.opts.json) {
      // An error frame that answers no question of ours (--json has shown the frame already).
      this.screen.print(formatError(error));
    }
    // Otherwise a drop or a failed attempt: showRetry tells it, with the next attempt.
  }

  private refreshStatus(): void {
    this.screen.status(formatStatus(this.clock, this.stateText, this.online));
  }

  // ------------------------------------------------------------------ what the user types

  private onLine(raw: string): void {
    const action = readLine(raw);
    switch (action.kind) {
      case 'nothing':
        if (this.typing) this.rl.prompt();
        return;
      case 'quit':
        this.finish(EXIT_OK);
        return;
      case 'help':
        for (const line of HELP) this.screen.note(line);
        break;
      case 'unknown':
        this.screen.note(`unknown command ${action.command}; try /help`);
        break;
      case 'ask':
        this.ask(action.question);
        break;
    }
    if (this.typing) this.rl.prompt(true);
  }

  private ask(question: Question): void {
    if (this.client.state === 'open') {
      this.send(question);
    } else if (this.queue.length >= MAX_QUEUED) {
      this.screen.note('not connected: request dropped (queue full)');
    } else {
      this.queue.push(question);
      if (this.screen.live) this.screen.note('not connected yet: request queued');
    }
  }

  private send(question: Question): void {
    this.unanswered++;
    this.client
      .send(question.request)
      .then(
        (answer) => this.showAnswer(answer, question),
        (error: unknown) => this.showUnanswered(error, question),
      )
      .finally(() => {
        this.unanswered--;
        if (this.inputEnded) this.finishWhenAnswered();
      });
  }

  private showAnswer(answer: ServerFrame, question: Question): void {
    if (this.finished || this.opts.json) return; // --json has shown the frame already
    for (const line of formatAnswer(answer, question.label)) this.screen.print(line);
  }

  private showUnanswered(error: unknown, question: Question): void {
    if (this.finished) return;
    if (!(error instanceof PulseError)) throw error;
    this.screen.note(formatUnanswered(error, question.label));
  }

  /** End of input (Ctrl-D, or the end of a pipe): the questions asked are answered, then exit 0. */
  private onInputEnd(): void {
    if (this.finished) return;
    this.inputEnded = true;
    this.drainTimer = setTimeout(() => this.finish(EXIT_OK), DRAIN_MS);
    this.finishWhenAnswered();
  }

  private finishWhenAnswered(): void {
    if (this.unanswered === 0 && this.queue.length === 0) this.finish(EXIT_OK);
  }

  private finish(code: number): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.drainTimer);
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    this.screen.end();
    this.rl.close();
    this.client.close();
    this.exit(code);
  }
}
