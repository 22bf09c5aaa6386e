// The session history a user can be shown (GET /api/users/{id}/sessions): a small query service
// over the database presence writes, so that the HTTP layer never speaks SQL.

import type { Db } from '../db/driver.js';
import { userSessions } from '../db/queries.js';

export interface SessionRecord {
  id: string;
  instanceId: string;
  protocol: string;
  connectedAt: Date;
  disconnectedAt: Date | null;
  closeCode: number | null;
  closeReason: string | null;
}

/** What the history needs of presence: its database, once presence is connected to it. */
export interface SessionSource {
  readonly database: Db | undefined;
  readonly ready: boolean;
}

export class SessionHistory {
  constructor(private readonly source: SessionSource) {}

  /** A user's sessions, newest first; undefined while the database is unavailable. */
  async list(userId: string, limit: number): Promise<SessionRecord[] | undefined> {
    const db = this.source.database;
    if (!db || !this.source.ready) return undefined;
    const rows = await userSessions(db, userId, limit);
    return rows.map((row) => ({
      id: row.id,
      instanceId: row.instance_id,
      protocol: row.protocol,
      connectedAt: new Date(row.connected_at),
      disconnectedAt: row.disconnected_at === null ? null : new Date(row.disconnected_at),
      closeCode: row.close_code,
      closeReason: row.close_reason,
    }));
  }
}
