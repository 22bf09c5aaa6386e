// pulse-client's exit status, as `pulse-client --help` documents it.

export const EXIT_OK = 0;
/** The server answered the question with an error frame. */
export const EXIT_SERVER_ERROR = 1;
/** Could not connect, or the connection was lost before the answer. */
export const EXIT_CONNECTION = 2;
export const EXIT_USAGE = 64;
