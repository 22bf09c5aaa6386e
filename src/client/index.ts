// `pulse/client`: the PulseClient library, its errors and the protocol's types and rules.
// Runs in browsers and in Node ≥ 20; see the README's "Use Pulse from your code".

export { PulseClient } from './pulse-client.js';
export type {
  ClientState,
  FibonacciAnswer,
  PulseClientEvents,
  PulseClientOptions,
  RequestOptions,
  RetryInfo,
  UsersAnswer,
  WebSocketFactory,
  WebSocketLike,
} from './pulse-client.js';
export { PulseError, type PulseErrorCode } from './pulse-error.js';
export type { OnlineEntry } from './online-list.js';
export type { BackoffPolicy } from './backoff.js';
export type {
  ClientFrame,
  ErrorFrame,
  FibonacciFrame,
  FibonacciRequest,
  OnlineUser,
  PresenceFrame,
  ServerFrame,
  TimeFrame,
  UserRef,
  UsersFrame,
  UsersRequest,
  WelcomeFrame,
} from '../protocol/frames.js';
export { CLOSE_CODE_MEANING, ERROR_CODE_MEANING, HTTP_ERROR_CODES, type ErrorCode, type HttpErrorCode } from '../protocol/codes.js';
export { NAME_PATTERN, NAME_RULE } from '../protocol/names.js';
export { PROTOCOL_VERSION, type WelcomeLimits } from '../protocol/messages.js';
