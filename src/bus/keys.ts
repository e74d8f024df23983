/**
 * The key names the bus makes itself. A name inside braces is a Redis Cluster hash tag: every key that
 * carries the same `{<stream>}` sits in that stream's slot, so the stream and its companion keys can be
 * written in one MULTI or script.
 */
import { InvalidKeyError } from '../util/errors.js';

/** A name that can sit inside a hash tag: no braces, no whitespace, 1 to 300 characters. */
const HASH_TAG_NAME_RE = /^[^{}\s]{1,300}$/;
const DEAD_LETTER_RE = /^dlq:\{([^{}\s]{1,300})\}$/;

/** SCAN pattern of every dead-letter stream. */
export const DEAD_LETTER_PATTERN = 'dlq:*';

/** True when `name` can sit inside a hash tag (`{<name>}`). */
export function fitsHashTag(name: string): boolean {
  return HASH_TAG_NAME_RE.test(name);
}

/**
 * `dlq:{<stream>}`: the dead letters of one stream. The braces are a hash tag over the whole source
 * name, so a dead letter and the ack of its source entry share a slot and go in one MULTI. Any stream
 * can have dead letters, except a dead-letter stream, as long as its name fits a hash tag; otherwise
 * InvalidKeyError.
 */
export function deadLetterStream(stream: string): string {
  if (!canHaveDeadLetters(stream)) {
    throw new InvalidKeyError(
      'stream',
      stream,
      'a dead-letter source must be a stream name without braces or spaces',
    );
  }
  return `dlq:{${stream}}`;
}

/** The source stream of a dead-letter stream name, or null when `name` is not one. */
export function deadLetterSource(name: string): string | null {
  return DEAD_LETTER_RE.exec(name)?.[1] ?? null;
}

/** True for a dead-letter stream name (`dlq:{<stream>}`). */
export function isDeadLetterStream(name: string): boolean {
  return deadLetterSource(name) !== null;
}

/** True when `stream` can have a dead-letter stream (see `deadLetterStream`). */
export function canHaveDeadLetters(stream: string): boolean {
  return fitsHashTag(stream) && !stream.startsWith('dlq:');
}
