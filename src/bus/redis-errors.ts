/**
 * The one place where Redis error replies are classified. Redis reports these conditions only as
 * error text; everything above this module works with the booleans.
 */
import { ErrorReply } from 'redis';

function replyStarts(err: unknown, prefix: string): boolean {
  return err instanceof ErrorReply && err.message.startsWith(prefix);
}

/** XREADGROUP / XACK / XAUTOCLAIM on a group (or stream) that does not exist, e.g. after a restart without persistence. */
export const isNoGroupReply = (err: unknown): boolean => replyStarts(err, 'NOGROUP');
/** XGROUP CREATE of a group that exists. */
export const isBusyGroupReply = (err: unknown): boolean => replyStarts(err, 'BUSYGROUP');
/** XADD with an explicit ID at or below the stream top. */
export const isDuplicateIdReply = (err: unknown): boolean =>
  replyStarts(err, 'ERR The ID specified in XADD is equal or smaller');
/** FCALL of a function the server does not have (library not loaded, or of another version). */
export const isNoFunctionReply = (err: unknown): boolean => replyStarts(err, 'ERR Function not found');
/** The server refused for lack of ACL rights. */
export const isNoPermReply = (err: unknown): boolean => replyStarts(err, 'NOPERM');
