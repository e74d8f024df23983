/**
 * The command registry's building blocks: a service is a name plus the command types it accepts, each
 * with a zod schema for its payload and one for its result. Both ends use the same definition: the
 * requester validates the payload before sending and the result on arrival, the service validates the
 * payload before its handler runs and the handler's result before replying. The concrete services
 * (strategy, backtesting, ...) are listed in `services.ts`.
 *
 * Stream names come from the catalog: commands on `mgmt:<service>:commands`, replies on the command's
 * callback stream (default `<service>:mgmt:results`), heartbeats on `<service>:status`.
 */
import { z } from 'zod';
import { streams } from '../contracts/catalog.js';
import type { ErrorCode } from '../util/errors.js';

export interface CommandSpec<P extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> {
  /** What the command does, for people (CLI help, docs). */
  readonly description: string;
  readonly payload: P;
  readonly result: R;
}

export type CommandSpecs = Readonly<Record<string, CommandSpec>>;

export interface ServiceSpec<C extends CommandSpecs = CommandSpecs> {
  /** `[a-z][a-z0-9_-]{0,63}`: it is part of stream names. */
  readonly name: string;
  readonly description: string;
  readonly commands: C;
}

/** Command types of a service. */
export type CommandType<S extends ServiceSpec> = keyof S['commands'] & string;
/** What a requester passes (before defaults and transforms). */
export type PayloadIn<S extends ServiceSpec, T extends CommandType<S>> = z.input<S['commands'][T]['payload']>;
/** What a handler receives. */
export type PayloadOf<S extends ServiceSpec, T extends CommandType<S>> = z.output<
  S['commands'][T]['payload']
>;
/** What a handler returns. */
export type ResultIn<S extends ServiceSpec, T extends CommandType<S>> = z.input<S['commands'][T]['result']>;
/** What a requester receives. */
export type ResultOf<S extends ServiceSpec, T extends CommandType<S>> = z.output<S['commands'][T]['result']>;

/** Define a service; the name is checked now (through the catalog), not when the first command is sent. */
export function defineService<C extends CommandSpecs>(
  name: string,
  description: string,
  commands: C,
): ServiceSpec<C> {
  streams.serviceCommands(name); // throws InvalidKeyError for a name that cannot be a stream name part
  return { name, description, commands };
}

/** The spec of one command type, or undefined when the service does not accept it. */
export function commandSpec(service: ServiceSpec, type: string): CommandSpec | undefined {
  return Object.hasOwn(service.commands, type) ? service.commands[type] : undefined;
}

/** The catalog streams of a service. */
export function serviceStreams(service: ServiceSpec | string): {
  readonly commands: string;
  readonly results: string;
  readonly status: string;
} {
  const name = typeof service === 'string' ? service : service.name;
  return {
    commands: streams.serviceCommands(name),
    results: streams.serviceResults(name),
    status: streams.serviceStatus(name),
  };
}

/**
 * The payload of an error reply (`<type>.error`). `code` is a code of the registry
 * (src/util/errors.ts). Codes of the command layer: `COMMAND_UNKNOWN`, `COMMAND_INVALID`,
 * `COMMAND_EXPIRED`, `HANDLER_FAILED`, `RESULT_INVALID`; handlers add domain codes (the `code` of the
 * typed error they throw, e.g. `NOT_FOUND`, `INVALID_RANGE`). Read as any string, since services in
 * other languages may send codes of their own (CommandFailedError maps those to `REMOTE_CODE_UNKNOWN`).
 */
export const commandErrorPayload = z.strictObject({
  code: z.string().min(1).max(100),
  message: z.string().max(4000),
  issues: z.array(z.string().max(1000)).max(50).optional(),
});
export type CommandErrorPayload = z.output<typeof commandErrorPayload>;

/** An error reply this build sends: the code is always one of the registry. */
export type CommandErrorReply = CommandErrorPayload & { readonly code: ErrorCode };
