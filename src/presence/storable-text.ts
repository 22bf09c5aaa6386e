// Text that reaches the database (names, close reasons): PostgreSQL's text and jsonb refuse
// U+0000 and unpaired surrogates, and one such string in a batch would fail every later batch of
// the instance. They become U+FFFD instead.

// eslint-disable-next-line no-control-regex
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function storableText(text: string): string {
  return text.replace(UNSTORABLE, '\uFFFD');
}
