// The one logger interface every part takes. Fastify's pino logger satisfies it; tests pass a
// silent one. Structured fields first, then the message, as pino wants them.

export interface Logger {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}
