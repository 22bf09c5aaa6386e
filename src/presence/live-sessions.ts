// The sessions open on this instance, in memory: the source of truth that the database
// follows, and what a resync rewrites from.

export type SessionProtocol = 'json' | 'text';

export interface LiveSession {
  readonly id: string;
  readonly userId: string;
  readonly name: string;
  readonly protocol: SessionProtocol;
  readonly remoteAddr: string | null;
  readonly userAgent: string | null;
  /** Epoch ms. */
  readonly connectedAt: number;
}
