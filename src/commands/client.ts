/**
 * Requesting: send a command and wait for its reply on the callback stream.
 *
 * The callback stream's current last ID is read before the command is sent, and replies are read with
 * XREAD BLOCK from that ID, so a reply cannot be missed however fast the service answers. Replies are
 * matched by command id (`command_id`, else the correlation id). No reply within `timeoutMs` rejects
 * with RequestTimeoutError; the command carries the same deadline (`expires_at`), so a service that
 * reads it later answers COMMAND_EXPIRED instead of running it. An error reply rejects with
 * CommandFailedError carrying the service's code.
 *
 * `CommandClient` keeps one blocking reader connection per callback stream in use and serves any
 * number of concurrent requests (the API holds one); `request()` is the one-shot form.
 */
import { randomUUID } from 'node:crypto';
import { Backoff } from '../util/backoff.js';
import { sleep } from '../util/sleep.js';
import { makeEnvelope, type Envelope, type JsonValue } from '../bus/codec.js';
import { type RedisClient, duplicateRedis } from '../bus/connection.js';
import { StreamProducer } from '../bus/producer.js';
import { parseEntries, parseReadReply } from '../bus/replies.js';
import { withDefaults, type WithDefaults } from '../util/defaults.js';
import { ClosedError, errorMessage } from '../util/errors.js';
import { CommandFailedError, RequestTimeoutError } from './errors.js';
import { DecodeError } from '../bus/errors.js';
import type { Logger } from '../util/log.js';
import {
  commandErrorPayload,
  commandSpec,
  serviceStreams,
  type CommandType,
  type PayloadIn,
  type ResultOf,
  type ServiceSpec,
} from './registry.js';
import { SERVICES, type ServiceName } from './services.js';
import { decodeReply, encodeCommand, isResultsStream, type IncomingReply } from './wire.js';
import { sendCommand as sendRaw } from '../bus/raw-command.js';
import { CATALOG_POLICY } from '../contracts/catalog.js';

/** A registry service by name, or a ServiceSpec given directly (services outside the registry, tests). */
export type ServiceRef = ServiceName | ServiceSpec;
export type SpecOf<S extends ServiceRef> = S extends ServiceName
  ? (typeof SERVICES)[S]
  : S extends ServiceSpec
    ? S
    : never;

export interface SendOptions {
  /**
   * Callback stream, a catalog `<name>:mgmt:results`.
   * @defaultValue the service's results stream
   */
  readonly replyTo?: string;
  /**
   * Correlation id of the command envelope.
   * @defaultValue the command id
   */
  readonly correlationId?: string | undefined;
  /**
   * The command id (a requester retrying the same command reuses it; the service answers it once).
   * @defaultValue a new random UUID
   */
  readonly commandId?: string;
  /**
   * `source` of the command: a client's own (see {@link CommandClientOptions.source}) for its calls.
   * @defaultValue `api`
   */
  readonly source?: string;
  /**
   * Time after which the service must not run the command, ms since epoch; null: never.
   * @defaultValue null
   */
  readonly expiresAt?: number | null;
}

/** The defaults of {@link SendOptions}, applied by `sendCommand`. */
export const SEND_DEFAULTS = Object.freeze({
  source: 'api',
  expiresAt: null,
} satisfies Partial<SendOptions>);

export interface RequestOptions extends Omit<SendOptions, 'expiresAt'> {
  /**
   * How long to wait for the reply, ms.
   * @defaultValue 10000
   */
  readonly timeoutMs?: number;
  /**
   * Send the deadline with the command (a late service answers COMMAND_EXPIRED).
   * @defaultValue true
   */
  readonly expire?: boolean;
}

/** The defaults of {@link RequestOptions} (beyond those of `SendOptions`), applied by `request`. */
export const REQUEST_DEFAULTS = Object.freeze({
  timeoutMs: 10_000,
  expire: true,
} satisfies Partial<RequestOptions>);

export interface CommandClientOptions {
  /**
   * `source` of the commands the client sends (a call's own `source` wins).
   * @defaultValue `api`
   */
  readonly source?: string | undefined;
  /**
   * XREAD BLOCK of the reply readers, ms.
   * @defaultValue 1000
   */
  readonly blockMs?: number;
  /**
   * Where reply reader failures are reported.
   * @defaultValue none
   */
  readonly log?: Logger;
}

/** The defaults of {@link CommandClientOptions}, applied by the `CommandClient` constructor. */
export const COMMAND_CLIENT_DEFAULTS = Object.freeze({
  source: SEND_DEFAULTS.source,
  blockMs: 1000,
} satisfies Partial<CommandClientOptions>);

function resolveService(service: ServiceRef): ServiceSpec {
  return typeof service === 'string' ? SERVICES[service] : service;
}

function checkPayload(spec: ServiceSpec, type: string, payload: unknown): void {
  const cmd = commandSpec(spec, type);
  if (!cmd) throw new DecodeError(`${spec.name} accepts no command ${JSON.stringify(type)}`);
  const r = cmd.payload.safeParse(payload);
  if (!r.success) {
    throw new DecodeError(
      `invalid payload of ${type}`,
      r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    );
  }
}

/** The ID of the last entry of a stream, `0-0` when it is empty or missing. */
async function lastEntryId(redis: RedisClient, stream: string): Promise<string> {
  const r = parseEntries(await sendRaw(redis, ['XREVRANGE', stream, '+', '-', 'COUNT', '1'])).entries;
  return r[0]?.id ?? '0-0';
}

interface Waiting {
  readonly resolve: (r: IncomingReply) => void;
}

/** One blocking reader over one callback stream, for the requests waiting on it. */
class ReplyReader {
  private reader: RedisClient | undefined;
  private cursor = '0-0';
  private active = false;
  private closed = false;
  private loop: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  readonly waiting = new Map<string, Waiting>();

  constructor(
    private readonly redis: RedisClient,
    readonly stream: string,
    private readonly blockMs: number,
    private readonly log: Logger | undefined,
  ) {}

  /**
   * Wait for the reply to `commandId` after entry `fromId` (the stream's end before the command was
   * sent). A reader already running is at or before that ID; a parked one starts there.
   */
  async add(commandId: string, fromId: string, w: Waiting): Promise<void> {
    this.waiting.set(commandId, w);
    if (!this.active) {
      this.cursor = fromId;
      this.active = true;
      const wake = this.wake;
      this.wake = undefined;
      wake?.();
    }
    this.starting ??= this.open().catch((err: unknown) => {
      this.starting = undefined;
      throw err;
    });
    await this.starting;
  }

  private async open(): Promise<void> {
    const reader = duplicateRedis(this.redis);
    reader.on('error', (err: unknown) => this.log?.debug({ err: errorMessage(err) }, 'reply reader error'));
    await reader.connect();
    this.reader = reader;
    if (this.closed) {
      reader.destroy();
      return;
    }
    this.loop = this.run(reader);
  }

  private async run(reader: RedisClient): Promise<void> {
    const backoff = new Backoff({ baseMs: 50, maxMs: 2000, jitter: 0.5 });
    while (!this.closed) {
      if (this.waiting.size === 0) {
        // Park: nobody waits. The next add() sets the cursor to the stream's end at its send time.
        this.active = false;
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      let reply: unknown;
      try {
        reply = await sendRaw(reader, [
          'XREAD',
          'COUNT',
          '100',
          'BLOCK',
          String(this.blockMs),
          'STREAMS',
          this.stream,
          this.cursor,
        ]);
        backoff.reset();
      } catch (err) {
        if (this.closed) break;
        this.log?.warn({ err: errorMessage(err), stream: this.stream }, 'reading replies failed; retrying');
        await sleep(backoff.next());
        continue;
      }
      for (const batch of parseReadReply(reply)) {
        for (const e of batch.entries) {
          this.cursor = e.id;
          const r = decodeReply(e.fields);
          if (!r || r.kind === 'other') continue;
          const w = this.waiting.get(r.commandId);
          if (!w) continue;
          this.waiting.delete(r.commandId);
          w.resolve(r);
        }
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
    await this.starting?.catch(() => undefined);
    if (this.reader?.isOpen) this.reader.destroy();
    await this.loop;
  }
}

export class CommandClient {
  private readonly readers = new Map<string, ReplyReader>();
  private readonly producer: StreamProducer;
  private readonly pending = new Map<string, { reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private closed = false;
  readonly source: string;
  private readonly o: WithDefaults<CommandClientOptions, typeof COMMAND_CLIENT_DEFAULTS>;

  constructor(
    private readonly redis: RedisClient,
    options: CommandClientOptions = {},
  ) {
    this.o = withDefaults(COMMAND_CLIENT_DEFAULTS, options);
    this.producer = new StreamProducer(redis, { policy: CATALOG_POLICY });
    this.source = this.o.source;
  }

  /** Send a command without waiting for its reply. Returns the envelope (its `id` is the command id). */
  async send<S extends ServiceRef, T extends CommandType<SpecOf<S>>>(
    service: S,
    type: T,
    payload: PayloadIn<SpecOf<S>, T>,
    opts: SendOptions = {},
  ): Promise<Envelope<PayloadIn<SpecOf<S>, T>>> {
    return sendCommand(this.redis, service, type, payload, {
      ...opts,
      source: opts.source ?? this.source,
      producer: this.producer,
    });
  }

  /** Send a command and resolve with its (validated) result; see the module comment for failures. */
  async request<S extends ServiceRef, T extends CommandType<SpecOf<S>>>(
    service: S,
    type: T,
    payload: PayloadIn<SpecOf<S>, T>,
    options: RequestOptions = {},
  ): Promise<ResultOf<SpecOf<S>, T>> {
    const opts = withDefaults(REQUEST_DEFAULTS, options);
    if (this.closed) throw new ClosedError('command client');
    const spec = resolveService(service);
    checkPayload(spec, type, payload);
    const replyTo = opts.replyTo ?? serviceStreams(spec).results;
    if (!isResultsStream(replyTo))
      throw new DecodeError(`reply_to ${JSON.stringify(replyTo)} is not a results stream`);
    const timeoutMs = opts.timeoutMs;
    const commandId = opts.commandId ?? randomUUID();
    const fromId = await lastEntryId(this.redis, replyTo);
    let reader = this.readers.get(replyTo);
    if (!reader) {
      reader = new ReplyReader(this.redis, replyTo, this.o.blockMs, this.o.log);
      this.readers.set(replyTo, reader);
    }
    const deadline = Date.now() + timeoutMs;
    let settle: { resolve: (r: IncomingReply) => void; reject: (e: Error) => void } | undefined;
    const replied = new Promise<IncomingReply>((resolve, reject) => (settle = { resolve, reject }));
    replied.catch(() => undefined); // rejections are handled where it is awaited
    const { resolve, reject } = settle as NonNullable<typeof settle>;
    const timer = setTimeout(() => {
      this.pending.delete(commandId);
      reader.waiting.delete(commandId);
      reject(new RequestTimeoutError(spec.name, type, commandId, timeoutMs));
    }, timeoutMs);
    this.pending.set(commandId, { reject, timer });
    const forget = (): void => {
      clearTimeout(timer);
      this.pending.delete(commandId);
      reader.waiting.delete(commandId);
    };
    try {
      // The reader is connected and positioned before the command leaves.
      await reader.add(commandId, fromId, {
        resolve: (r) => {
          forget();
          resolve(r);
        },
      });
      if (!this.pending.has(commandId)) await replied; // timed out while connecting: throws, sends nothing
      await sendCommand(this.redis, spec, type, payload, {
        replyTo,
        commandId,
        source: opts.source ?? this.source,
        producer: this.producer,
        expiresAt: opts.expire ? deadline : null,
        correlationId: opts.correlationId,
      });
    } catch (err) {
      forget();
      throw err;
    }
    const reply = await replied;
    return parseReply(spec, type, commandId, reply) as ResultOf<SpecOf<S>, T>;
  }

  /** Close the reader connections; requests still waiting reject with ClosedError. */
  async close(): Promise<void> {
    this.closed = true;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ClosedError('command client'));
    }
    this.pending.clear();
    await Promise.allSettled([...this.readers.values()].map((r) => r.close()));
    this.readers.clear();
  }
}

function parseReply(spec: ServiceSpec, type: string, commandId: string, reply: IncomingReply): unknown {
  const payload: JsonValue = reply.envelope.payload;
  if (reply.kind === 'error') {
    const e = commandErrorPayload.safeParse(payload);
    throw new CommandFailedError(
      spec.name,
      type,
      commandId,
      e.success ? e.data : { code: 'REMOTE_CODE_UNKNOWN', message: JSON.stringify(payload).slice(0, 500) },
    );
  }
  const cmd = commandSpec(spec, type);
  const r = cmd?.result.safeParse(payload);
  if (!r?.success) {
    throw new DecodeError(
      `invalid result of ${spec.name} ${type}`,
      r?.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`) ?? [],
    );
  }
  return r.data;
}

/** Send a command (validated against the registry) without waiting. Returns its envelope. */
export async function sendCommand<S extends ServiceRef, T extends CommandType<SpecOf<S>>>(
  redis: RedisClient,
  service: S,
  type: T,
  payload: PayloadIn<SpecOf<S>, T>,
  options: SendOptions & { readonly producer?: StreamProducer } = {},
): Promise<Envelope<PayloadIn<SpecOf<S>, T>>> {
  const opts = withDefaults(SEND_DEFAULTS, options);
  const spec = resolveService(service);
  checkPayload(spec, type, payload);
  const names = serviceStreams(spec);
  const replyTo = opts.replyTo ?? names.results;
  if (!isResultsStream(replyTo))
    throw new DecodeError(`reply_to ${JSON.stringify(replyTo)} is not a results stream`);
  const id = opts.commandId ?? randomUUID();
  const env = makeEnvelope(type, opts.source, payload, {
    id,
    correlationId: opts.correlationId ?? id,
  });
  const producer = opts.producer ?? new StreamProducer(redis, { policy: CATALOG_POLICY });
  await producer.publish(names.commands, encodeCommand(env, replyTo, opts.expiresAt));
  return env;
}

/**
 * One request on a client of its own (one reader connection for this call): for scripts and the CLI.
 * Long-lived callers keep a CommandClient.
 */
export async function request<S extends ServiceRef, T extends CommandType<SpecOf<S>>>(
  redis: RedisClient,
  service: S,
  type: T,
  payload: PayloadIn<SpecOf<S>, T>,
  opts: RequestOptions = {},
): Promise<ResultOf<SpecOf<S>, T>> {
  const client = new CommandClient(redis, { source: opts.source });
  try {
    return await client.request(service, type, payload, opts);
  } finally {
    await client.close();
  }
}
