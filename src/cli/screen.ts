// Where interactive mode's lines go: above a live status line on a terminal, plain lines
// otherwise; in --json mode stdout carries the server's frames only and everything else goes to
// stderr.

import type { Interface } from 'node:readline';

export interface Terminal {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream & { isTTY?: boolean };
  error: NodeJS.WritableStream;
}

export class Screen {
  private statusText = '';

  constructor(
    private readonly term: Terminal,
    /** The prompt to redraw under the lines, when the user types on this terminal. */
    private readonly rl: Interface | null,
    /** A terminal: lines scroll above a status line. */
    readonly live: boolean,
    private readonly json: boolean,
  ) {}

  /** A line of the conversation: an answer, a join, the welcome. */
  print(line: string): void {
    if (!this.live) {
      this.term.output.write(`${line}\n`);
      return;
    }
    this.term.output.write(`\r\x1b[K${line}\n`);
    this.redraw();
  }

  /** A remark about the session (queued, reconnecting, help). */
  note(line: string): void {
    if (this.json) this.term.error.write(`${line}\n`);
    else this.print(line);
  }

  /** Why the session ends. */
  printError(line: string): void {
    if (this.live) this.print(line);
    else this.term.error.write(`${line}\n`);
  }

  /** A server frame, one JSON per line (--json). */
  frame(json: string): void {
    this.term.output.write(`${json}\n`);
  }

  status(text: string): void {
    if (!this.live || text === this.statusText) return;
    this.statusText = text;
    this.redraw();
  }

  private redraw(): void {
    if (this.rl) {
      this.rl.setPrompt(`${this.statusText} > `);
      this.rl.prompt(true);
    } else {
      this.term.output.write(`\r\x1b[K${this.statusText}`);
    }
  }

  /** Leaves the terminal on a clean line. */
  end(): void {
    if (this.live) this.term.output.write('\r\x1b[K');
  }
}
