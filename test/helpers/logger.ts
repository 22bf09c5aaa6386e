// A logger for unit tests that drops everything.

import type { Logger } from '../../src/log.js';

export const silentLogger: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

