// Who a client may say it is, in open mode (docs/design.md §3, §4). The server refuses anything
// else at the upgrade with HTTP 400; clients check the same rule before they connect.

/** Display names (`?name=`): 1–32 Unicode letters, decimal digits, space, `.`, `_`, `-`. */
export const NAME_PATTERN = /^[\p{L}\p{Nd} ._-]{1,32}$/u;
export const NAME_RULE = 'a name is 1-32 letters, digits, spaces, ".", "_" or "-"';

/** Text-protocol client ids (`/ws/{clientId}`): 1–64 of A–Z, a–z, 0–9, `_`, `-`. */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const CLIENT_ID_RULE = 'a clientId is 1-64 characters of A-Z, a-z, 0-9, _ and -';
