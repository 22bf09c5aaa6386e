// The protocol's fixed limits, one definition each (docs/design.md §3, §6). Limits an operator
// sets are configuration (src/config.ts); the welcome tells each client their values.

/** JSON frames nested deeper than this are INVALID_MESSAGE. */
export const MAX_JSON_DEPTH = 32;
/** A request id: a string of at most this many characters (JavaScript length), or a safe integer. */
export const MAX_ID_LENGTH = 64;
/** Users per joined/left list of one presence message; past it the message is truncated. */
export const PRESENCE_LIST_MAX = 100;
/** Users in one `users` reply and one page of `GET /api/users`. */
export const USERS_PAGE_MAX = 1000;
/** Sessions in one page of `GET /api/users/{id}/sessions`, and the default page. */
export const SESSIONS_PAGE_MAX = 500;
export const SESSIONS_PAGE_DEFAULT = 50;
/** More than ABUSE_MAX_REJECTIONS RATE_LIMITED answers within ABUSE_WINDOW_MS closes with 1008. */
export const ABUSE_WINDOW_MS = 10_000;
export const ABUSE_MAX_REJECTIONS = 100;
/** Longest user id (a token's `sub`) and longest name taken from a token's `name` claim. */
export const USER_ID_MAX_LENGTH = 128;
export const TOKEN_NAME_MAX_LENGTH = 64;
