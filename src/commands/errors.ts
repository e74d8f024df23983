/** Errors of request/reply over the bus (codes in src/util/errors.ts). */
import { isErrorCode, MarketbusError, type ErrorCode } from '../util/errors.js';

/**
 * A request on the command bus got no answer in time: the service is down, overloaded, or the command
 * was lost. The command carried the same deadline, so a service that reads it later does not run it.
 */
export class RequestTimeoutError extends MarketbusError {
  readonly service: string;
  readonly commandType: string;
  readonly commandId: string;
  readonly timeoutMs: number;
  constructor(service: string, commandType: string, commandId: string, timeoutMs: number) {
    super(
      'REQUEST_TIMEOUT',
      `no answer from service ${service} to ${commandType} (command ${commandId}) within ${timeoutMs} ms`,
    );
    this.service = service;
    this.commandType = commandType;
    this.commandId = commandId;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The service answered a command with an error. `remoteCode` is the service's registry code:
 * `COMMAND_UNKNOWN`, `COMMAND_INVALID`, `COMMAND_EXPIRED`, `HANDLER_FAILED`, `RESULT_INVALID`, or a
 * domain code such as `NOT_FOUND`. A code that is not in the registry (a service in another language
 * with codes of its own), or an error payload that cannot be read, is `REMOTE_CODE_UNKNOWN`; the
 * string the service sent is kept in `remoteCodeText` (equal to `remoteCode` for registry codes).
 */
export class CommandFailedError extends MarketbusError {
  readonly service: string;
  readonly commandType: string;
  readonly commandId: string;
  readonly remoteCode: ErrorCode;
  readonly remoteCodeText: string;
  readonly issues: readonly string[];
  constructor(
    service: string,
    commandType: string,
    commandId: string,
    remote: {
      readonly code: string;
      readonly message: string;
      readonly issues?: readonly string[] | undefined;
    },
  ) {
    super('COMMAND_FAILED', `${service} ${commandType} failed [${remote.code}]: ${remote.message}`);
    this.service = service;
    this.commandType = commandType;
    this.commandId = commandId;
    this.remoteCode = isErrorCode(remote.code) ? remote.code : 'REMOTE_CODE_UNKNOWN';
    this.remoteCodeText = remote.code;
    this.issues = remote.issues ?? [];
  }
}
