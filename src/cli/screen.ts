// Where interactive mode's lines go: above a live status line on a terminal, plain lines otherwise.

import type { Interface } from 'node:readline';

export interface Terminal {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream & { isTTY?: boolean };
  error: NodeJS.WritableStream;
}

/** Where lines go: above a live status line on a terminal, plain lines otherwise. */
export class Screen {
  private statusText = '';
  constructor(
    private readonly term: Terminal,
    private readonly rl: Interface | null,
    readonly live: boolean,
  ) {}

  print(line: string): void {
    if (!this.live) {
      this.term.output.write(`${line}\n`);
      return;
    }
    this.term.output.write(`\r\x1b[K${line}\n`);
    this.redraw();
  }

  printError(line: string): void {
    if (this.live) this.print(line);
    else this.term.error.write(`${line}\n`);
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
