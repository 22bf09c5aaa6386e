// Every HTTP error Pulse answers has one body (src/protocol/codes.ts), whatever produced it: a
// route, validation, Fastify's own checks (a malformed URL), or Node's HTTP parser (a malformed
// request). Fastify's constructor takes the last two; app.ts passes them.

import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { httpErrorBody, httpErrorResponse, type HttpErrorCode } from '../protocol/codes.js';

export function sendError(reply: FastifyReply, status: number, code: HttpErrorCode, message: string): FastifyReply {
  return reply.code(status).send(httpErrorBody(status, STATUS_CODES[status], code, message));
}

/** Fastify's own refusals before any route runs (a bad escape in the path: 400; a path parameter too long: 414). */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400;
  void sendError(reply, status, 'INVALID_REQUEST', error.message);
}

/** A request Node's parser could not read (Fastify's default, with the one body). */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const message = status === 408 ? 'the request took too long to arrive' : status === 431 ? 'request headers too large' : 'malformed HTTP request';
  if (socket.writable) socket.write(httpErrorResponse(status, STATUS_CODES[status], 'INVALID_REQUEST', message));
  socket.destroy(err);
}
