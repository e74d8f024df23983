/**
 * Serving a service's commands: `serveCommands(redis, service, handlers)` is a StreamConsumer on
 * `mgmt:<service>:commands` in the group `<service>.workers` (one instance handles each command;
 * commands of a dead instance are reclaimed by XAUTOCLAIM after `claimMinIdleMs`), which for each
 * command:
 *
 *   1. reads the envelope, `reply_to` and `expires_at`; a bad envelope or callback stream is a
 *      DecodeError: the entry goes to `dlq:{mgmt:<service>:commands}` with the reason, the service goes on;
 *   2. checks the type against the registry and the payload against its schema; when either fails it
 *      answers `<type>.error` (`COMMAND_UNKNOWN` / `COMMAND_INVALID`, so the requester does not wait for
 *      its timeout) and dead-letters the entry with the reason;
 *   3. skips a command already answered (a redelivery after a crash between reply and ack): no second
 *      handler run, no second reply;
 *   4. answers `COMMAND_EXPIRED` without running the handler when the requester's deadline has passed;
 *   5. runs the handler and replies `<type>.result` with the result checked against its schema, once
 *      (`publishOnce`, keyed by command id). A handler that throws a typed MarketbusError (other than
 *      transient ones: Redis unavailable, timeouts) has given its answer: `<type>.error` with that
 *      code. Any other throw is retried with backoff; the last delivery answers `HANDLER_FAILED` and
 *      the entry is dead-lettered.
 *
 * Handlers of one instance run one at a time, in stream order. Handlers must be idempotent on the
 * command id (`ctx.command.id`): a responder that dies after the handler's effect but before its reply
 * sees the command run again elsewhere.
 *
 * Heartbeats go to `<service>:status` (see status.ts) from start to close.
 */
import type { z } from 'zod';
import { groups } from '../contracts/catalog.js';
import { defaultConsumerName } from '../bus/consumer.js';
import type { Envelope, JsonValue } from '../bus/codec.js';
import type { RedisClient } from '../bus/connection.js';
import { StreamConsumer, type Delivery } from '../bus/consumer.js';
import type { BusMetrics } from '../bus/metrics.js';
import { InvalidArgumentError, MarketbusError, errorMessage, type ErrorCode } from '../util/errors.js';
import { DecodeError } from '../bus/errors.js';
import { withDefaults, type WithDefaults } from '../util/defaults.js';
import type { Logger } from '../util/log.js';
import {
  commandSpec,
  serviceStreams,
  type CommandErrorReply,
  type CommandType,
  type PayloadOf,
  type ResultIn,
  type ServiceSpec,
} from './registry.js';
import { answeredId, publishOnce } from './reply-once.js';
import { HEARTBEAT_DEFAULTS, Heartbeat, type CommandCounts } from './status.js';
import { decodeCommand, encodeReply, type IncomingCommand } from './wire.js';

export interface CommandContext {
  /** The command's envelope: `id` (idempotency key), `type`, `source`, `time`, `correlationId`. */
  readonly command: Envelope<JsonValue>;
  readonly replyTo: string;
  /** 1 on the first delivery; more after a retry or a reclaim from a dead instance. */
  readonly deliveries: number;
  readonly service: string;
  readonly instance: string;
}

export type CommandHandler<S extends ServiceSpec, T extends CommandType<S>> = (
  payload: PayloadOf<S, T>,
  ctx: CommandContext,
) => Promise<ResultIn<S, T>> | ResultIn<S, T>;

/** One handler per command type of the service (checked at compile time and at construction). */
export type CommandHandlers<S extends ServiceSpec> = { readonly [T in CommandType<S>]: CommandHandler<S, T> };

export type CommandOutcomeKind =
  /** Handled; its result was replied. */
  | 'replied'
  /** Answered with an error (typed handler error, expired, handler failed at its last delivery). */
  | 'answered-error'
  /** Malformed (unknown type, invalid payload): error reply, dead-lettered. */
  | 'rejected'
  /** Already answered before (redelivery): skipped. */
  | 'duplicate'
  /** The handler failed; the command will be retried. */
  | 'retry';

export interface CommandOutcome {
  readonly kind: CommandOutcomeKind;
  readonly type: string;
  readonly commandId: string;
  /** Error code of error replies. */
  readonly code?: ErrorCode | undefined;
}

export interface ServeOptions {
  /**
   * Consumer name (instance) within `<service>.workers`.
   * @defaultValue `<hostname>-<pid>`
   */
  readonly consumer?: string | undefined;
  /**
   * `source` of replies.
   * @defaultValue the service name
   */
  readonly source?: string;
  /**
   * XREADGROUP BLOCK, ms.
   * @defaultValue 1000
   */
  readonly blockMs?: number;
  /**
   * Idle time after which a command held by another (dead) instance is reclaimed, ms.
   * @defaultValue 30000
   */
  readonly claimMinIdleMs?: number | undefined;
  /**
   * How often reclaimable commands are looked for, ms.
   * @defaultValue 2000
   */
  readonly claimIntervalMs?: number;
  /**
   * Deliveries of a failing command before it is answered HANDLER_FAILED and dead-lettered, deliveries.
   * @defaultValue 3
   */
  readonly maxDeliveries?: number;
  /**
   * First retry delay of a failed handler, ms (doubles per delivery, up to 30000).
   * @defaultValue 500
   */
  readonly retryBaseMs?: number;
  /**
   * Heartbeat interval on `<service>:status`, ms.
   * @defaultValue 5000
   */
  readonly heartbeatMs?: number | undefined;
  /**
   * Extra heartbeat fields, read at each beat.
   * @defaultValue none
   */
  readonly statusFields?: () => Promise<Readonly<Record<string, string>>>;
  /**
   * Called after each command (logging, tests). Must not throw.
   * @defaultValue none
   */
  readonly onOutcome?: (o: CommandOutcome) => void;
  /**
   * Counts the command stream's deliveries, acks and dead letters.
   * @defaultValue none (not counted)
   */
  readonly metrics?: BusMetrics | undefined;
  /**
   * Where skipped, rejected and failed commands are reported.
   * @defaultValue none
   */
  readonly log?: Logger;
}

/** The defaults of {@link ServeOptions}, applied by the `CommandServer` constructor. */
export const SERVE_DEFAULTS = Object.freeze({
  blockMs: 1000,
  claimMinIdleMs: 30_000,
  claimIntervalMs: 2000,
  maxDeliveries: 3,
  retryBaseMs: 500,
  heartbeatMs: HEARTBEAT_DEFAULTS.intervalMs,
} satisfies Partial<ServeOptions>);

type AnyHandler = (payload: unknown, ctx: CommandContext) => unknown;

/** Error codes that mean "try again", not "this is the answer". */
const TRANSIENT: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'REDIS_UNAVAILABLE',
  'TIMEOUT',
  'CLOSED',
  'STORE_LOCKED',
  'REQUEST_TIMEOUT',
]);

function isAnswer(err: unknown): err is MarketbusError {
  return err instanceof MarketbusError && !TRANSIENT.has(err.code);
}

function zodIssueList(err: z.ZodError): string[] {
  return err.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`);
}

export class CommandServer<S extends ServiceSpec = ServiceSpec> extends StreamConsumer<IncomingCommand> {
  readonly service: S;
  private readonly redis: RedisClient;
  private readonly handlers: Readonly<Record<string, AnyHandler>>;
  private readonly heartbeat: Heartbeat;
  private readonly source: string;
  private readonly lastDelivery: number;
  private readonly serveOpts: WithDefaults<ServeOptions, typeof SERVE_DEFAULTS>;
  private readonly tally: CommandCounts = { handled: 0, rejected: 0, failed: 0, duplicates: 0, expired: 0 };
  private closing: Promise<void> | undefined;

  constructor(redis: RedisClient, service: S, handlers: CommandHandlers<S>, options: ServeOptions = {}) {
    const o = withDefaults(SERVE_DEFAULTS, options);
    const names = serviceStreams(service);
    const ref: { handle?: (d: Delivery<IncomingCommand>) => Promise<void> } = {};
    const maxDeliveries = o.maxDeliveries;
    super(redis, {
      group: groups.service(service.name),
      consumer: o.consumer ?? defaultConsumerName(),
      streams: [names.commands],
      // Commands sent while no instance ran (the group did not exist yet) are handled too.
      startId: '0',
      blockMs: o.blockMs,
      claimMinIdleMs: o.claimMinIdleMs,
      claimIntervalMs: o.claimIntervalMs,
      maxDeliveries,
      retryBaseMs: o.retryBaseMs,
      retryMaxMs: 30_000,
      metrics: o.metrics,
      log: o.log,
      decode: (fields) => decodeCommand(fields, names.results),
      // A bug guard: the consumer starts only in start(), after the constructor set ref.handle.
      handler: (d) => (ref.handle ? ref.handle(d) : Promise.reject(new Error('command server not ready'))),
    });
    this.service = service;
    this.redis = redis;
    this.serveOpts = o;
    this.lastDelivery = maxDeliveries;
    this.source = o.source ?? service.name;
    const table = handlers as unknown as Readonly<Record<string, AnyHandler>>;
    for (const type of Object.keys(service.commands)) {
      if (typeof table[type] !== 'function')
        throw new InvalidArgumentError('handlers', `no handler for ${service.name} ${type}`);
    }
    this.handlers = table;
    this.heartbeat = new Heartbeat(redis, {
      service: service.name,
      instance: this.consumer,
      commands: Object.keys(service.commands),
      counts: () => this.tally,
      extra: o.statusFields,
      intervalMs: o.heartbeatMs,
      log: o.log,
    });
    ref.handle = (d) => this.handle(d);
  }

  /** Commands handled, rejected, failed, skipped as duplicates and expired since start. */
  get counts(): Readonly<CommandCounts> {
    return { ...this.tally };
  }

  override async start(): Promise<void> {
    await super.start();
    this.heartbeat.start();
  }

  /** Stop taking commands (the one in hand finishes), then say `stopped` on the status stream. */
  override close(): Promise<void> {
    this.closing ??= (async () => {
      await super.close();
      await this.heartbeat.stop();
    })();
    return this.closing;
  }

  private async handle(d: Delivery<IncomingCommand>): Promise<void> {
    const { envelope: cmd, replyTo, expiresAt } = d.value;
    const spec = commandSpec(this.service, cmd.type);
    if (!spec) {
      const known = Object.keys(this.service.commands).join(', ');
      const message = `${this.service.name} accepts no command ${JSON.stringify(cmd.type)} (it accepts ${known})`;
      await this.reject(cmd, replyTo, { code: 'COMMAND_UNKNOWN', message });
      throw new DecodeError(message);
    }
    const parsed = spec.payload.safeParse(cmd.payload);
    if (!parsed.success) {
      const issues = zodIssueList(parsed.error);
      await this.reject(cmd, replyTo, {
        code: 'COMMAND_INVALID',
        message: `invalid payload of ${cmd.type}`,
        issues,
      });
      throw new DecodeError(`invalid payload of ${cmd.type}`, issues);
    }
    if ((await answeredId(this.redis, replyTo, cmd.id)) !== null) {
      this.tally.duplicates++;
      this.serveOpts.log?.info({ command: cmd.id, type: cmd.type }, 'command already answered; skipped');
      this.outcome('duplicate', cmd);
      return;
    }
    if (expiresAt !== null && Date.now() > expiresAt) {
      this.tally.expired++;
      await this.answerError(cmd, replyTo, {
        code: 'COMMAND_EXPIRED',
        message: `the requester's deadline ${new Date(expiresAt).toISOString()} has passed`,
      });
      return;
    }
    const handler = this.handlers[cmd.type] as AnyHandler;
    const ctx: CommandContext = {
      command: cmd,
      replyTo,
      deliveries: d.deliveries,
      service: this.service.name,
      instance: this.consumer,
    };
    let result: unknown;
    try {
      result = await handler(parsed.data, ctx);
    } catch (err) {
      if (isAnswer(err)) {
        this.tally.failed++;
        await this.answerError(cmd, replyTo, { code: err.code, message: err.message });
        return;
      }
      if (d.deliveries >= this.lastDelivery) {
        this.tally.failed++;
        await this.answerError(cmd, replyTo, {
          code: 'HANDLER_FAILED',
          message: `${cmd.type} failed ${d.deliveries} times: ${errorMessage(err)}`,
        });
      } else this.outcome('retry', cmd);
      throw err; // retried by the consumer; dead-lettered after the last delivery
    }
    const checked = spec.result.safeParse(result);
    if (!checked.success) {
      this.tally.failed++;
      this.serveOpts.log?.error(
        { type: cmd.type, issues: zodIssueList(checked.error) },
        'handler result invalid',
      );
      await this.answerError(cmd, replyTo, {
        code: 'RESULT_INVALID',
        message: `the ${cmd.type} handler returned an invalid result`,
        issues: zodIssueList(checked.error),
      });
      return;
    }
    await publishOnce(this.redis, replyTo, cmd.id, encodeReply(cmd, 'result', this.source, checked.data));
    this.tally.handled++;
    this.outcome('replied', cmd);
  }

  private async reject(cmd: Envelope<JsonValue>, replyTo: string, e: CommandErrorReply): Promise<void> {
    this.tally.rejected++;
    await publishOnce(this.redis, replyTo, cmd.id, encodeReply(cmd, 'error', this.source, e));
    this.serveOpts.log?.warn({ command: cmd.id, type: cmd.type, code: e.code }, 'command rejected');
    this.outcome('rejected', cmd, e.code);
  }

  private async answerError(cmd: Envelope<JsonValue>, replyTo: string, e: CommandErrorReply): Promise<void> {
    await publishOnce(this.redis, replyTo, cmd.id, encodeReply(cmd, 'error', this.source, e));
    this.outcome('answered-error', cmd, e.code);
  }

  private outcome(kind: CommandOutcomeKind, cmd: Envelope<JsonValue>, code?: ErrorCode): void {
    this.serveOpts.onOutcome?.({
      kind,
      type: cmd.type,
      commandId: cmd.id,
      code,
    });
  }
}

/** Create and start a command server for `service`. */
export async function serveCommands<S extends ServiceSpec>(
  redis: RedisClient,
  service: S,
  handlers: CommandHandlers<S>,
  o: ServeOptions = {},
): Promise<CommandServer<S>> {
  const server = new CommandServer(redis, service, handlers, o);
  await server.start();
  return server;
}
