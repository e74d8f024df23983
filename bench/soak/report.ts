/**
 * The soak's figures: progress lines while it runs, then the JSON report (throughput, latency against the
 * raw baseline, delivery, Redis memory per instrument, RSS series and the flatness verdicts), the plot's
 * series and a Markdown summary table for BENCHMARKS.md.
 */
import { ratio, round } from '../../src/bench/stats.js';
import { rate, type Counters } from './counters.js';
import type { SoakOptions } from './options.js';
import type { PlotOptions, Series } from './plot.js';
import type { FinalStats, WindowStats } from './probe.js';
import type { LatencySummary } from './samples.js';
import type { StreamMemory } from './redis-stats.js';
import { flatVerdict, type FlatCriterion, type FlatVerdict, type Point } from './verdict.js';

/** One sample of the run. */
export interface Row {
  /** Seconds since all load was on. */
  readonly t: number;
  /** After the warm-up. */
  readonly measuring: boolean;
  /** RSS per process, MiB (`postgres_pss`: PSS of the postmaster and its backends). */
  readonly rss_mib: Readonly<Record<string, number | null>>;
  /** CPU per process over the interval, percent of one core. */
  readonly cpu_pct: Readonly<Record<string, number | null>>;
  readonly redis_used_memory_mib: number;
  readonly redis_used_memory_rss_mib: number;
  /** Entries held by every stream the system writes. */
  readonly redis_entries: number;
  readonly prev: Counters;
  readonly cur: Counters;
  /** Seconds since the previous sample. */
  readonly dt: number;
  readonly ws: WindowStats | null;
  readonly raw: WindowStats | null;
  readonly strategy: WindowStats | null;
  readonly load1: number;
}

export interface Run {
  readonly options: SoakOptions;
  readonly startedAt: string;
  readonly machine: Readonly<Record<string, unknown>>;
  readonly instruments: number;
  readonly strategies: number;
  readonly users: number;
  readonly clients: number;
  readonly watchedInstruments: number;
  readonly rawStreams: number;
  readonly rows: readonly Row[];
  /** Counters at the end of the warm-up and at the end, with their wall-clock times (ms). */
  readonly warmupEnd: { readonly at: number; readonly c: Counters };
  readonly end: { readonly at: number; readonly c: Counters };
  readonly t0: number;
  readonly finals: Readonly<Record<string, FinalStats | undefined>>;
  readonly memorySamples: readonly StreamMemory[];
  readonly entriesEnd: number;
  /** Redis used_memory before the feed started (users, sessions, strategies' bookkeeping). */
  readonly usedMemoryEmpty: number;
  /** Error and fatal lines in each service's log. */
  readonly logErrors: Readonly<Record<string, { readonly count: number; readonly first: readonly string[] }>>;
}

const MIB = 2 ** 20;
/** The services whose RSS the flatness verdict covers. */
const SERVICES = ['feed', 'runner', 'api'] as const;
const COLORS: Record<string, string> = {
  feed: '#1f77b4',
  runner: '#2ca02c',
  api: '#d62728',
  redis: '#9467bd',
  redis_used: '#9467bd',
  postgres_pss: '#8c564b',
};

function fmt(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '-';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function clock(s: number): string {
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
}

export function progressLine(r: Row, duration: number): string {
  const rt = (name: string): string => fmt(rate(r.prev, r.cur, name, r.dt));
  const mib = (name: string): string => fmt(r.rss_mib[name] ?? null);
  const ws = r.ws ? `ws ${fmt(r.ws.received / r.dt)} msg/s p99 ${fmt(r.ws.latency.p99_ms, 1)} ms` : 'ws -';
  const raw = r.raw ? `(raw ${fmt(r.raw.latency.p99_ms, 1)})` : '';
  const strat = r.strategy ? `strategy p99 ${fmt(r.strategy.latency.p99_ms, 1)} ms` : '';
  return (
    `[${clock(r.t)}/${clock(duration)}] feed ${rt('feed_candles_published')} candles/s ${rt('feed_prices_published')} px/s` +
    ` | runner ${rt('runner_candles_acked')} c/s ${rt('runner_outputs')} out/s | ${ws} ${raw} | ${strat}` +
    ` | RSS MiB feed ${mib('feed')} runner ${mib('runner')} api ${mib('api')} redis ${mib('redis')}` +
    ` | redis used ${fmt(r.redis_used_memory_mib)} MiB ${fmt(r.redis_entries / 1e6, 2)}M entries | load ${fmt(r.load1, 1)}`
  );
}

function latencyRatio(
  a: LatencySummary | undefined,
  b: LatencySummary | undefined,
  key: 'p50_ms' | 'p99_ms',
): number | null {
  return round(ratio(a?.[key] ?? Number.NaN, b?.[key] ?? Number.NaN), 2);
}

/** Mean of a per-row value over the measured rows. */
function meanOver(rows: readonly Row[], pick: (r: Row) => number | null | undefined): number | null {
  const v = rows.map(pick).filter((x): x is number => x !== null && x !== undefined && Number.isFinite(x));
  return v.length ? round(v.reduce((a, b) => a + b, 0) / v.length, 1) : null;
}

export function buildReport(run: Run) {
  const o = run.options;
  const a = run.warmupEnd.c;
  const b = run.end.c;
  const secs = (run.end.at - run.warmupEnd.at) / 1000;
  const per = (name: string): number | null => round(rate(a, b, name, secs), 1);
  const diff = (name: string): number => (b[name] ?? 0) - (a[name] ?? 0);
  const ws = run.finals['ws'];
  const raw = run.finals['raw'];
  const strategy = run.finals['strategy'];
  const measured = run.rows.filter((r) => r.measuring);

  // Redis memory per instrument and per entry.
  const used = b['redis_used_memory'] ?? Number.NaN;
  const byKind = new Map<string, StreamMemory[]>();
  for (const m of run.memorySamples) {
    const kind = m.stream.startsWith('md.candles.1m.')
      ? 'candles_1m'
      : m.stream.startsWith('md.candles.5m.')
        ? 'candles_5m'
        : m.stream.startsWith('md.prices.')
          ? 'prices'
          : m.stream.startsWith('strategy.metrics.')
            ? 'strategy_metrics'
            : 'strategy_events';
    const list = byKind.get(kind) ?? [];
    list.push(m);
    byKind.set(kind, list);
  }
  const kinds = Object.fromEntries(
    [...byKind].map(([kind, list]) => {
      const entries = list.reduce((s, m) => s + m.entries, 0);
      const bytes = list.reduce((s, m) => s + m.bytes, 0);
      return [
        kind,
        {
          streams_sampled: list.length,
          mean_entries: round(entries / list.length, 1),
          mean_bytes: Math.round(bytes / list.length),
          bytes_per_entry: round(entries > 0 ? bytes / entries : Number.NaN, 1),
        },
      ];
    }),
  ) as Record<string, { bytes_per_entry: number | null; mean_bytes: number }>;
  // Full retention: 7 days of 1m candles (10,080), their 5m bars (2,016), 1,200 price snapshots.
  const full =
    (kinds['candles_1m']?.bytes_per_entry ?? 0) * 10_080 +
    (kinds['candles_5m']?.bytes_per_entry ?? 0) * 2016 +
    (kinds['prices']?.bytes_per_entry ?? 0) * 1200;

  // Flatness: each service's RSS over the second half of the run; Redis per entry it holds.
  const criterion: FlatCriterion = { maxSlopeMiBPerMin: o.flatMiBPerMin, maxSlopePctPerMin: o.flatPctPerMin };
  const series = (pick: (r: Row) => number | null | undefined): Point[] =>
    run.rows.flatMap((r) => {
      const v = pick(r);
      return v === null || v === undefined || !Number.isFinite(v) ? [] : [{ t: r.t, v }];
    });
  const verdicts: Record<string, FlatVerdict> = {};
  for (const s of SERVICES)
    verdicts[s] = flatVerdict(
      series((r) => r.rss_mib[s]),
      0,
      o.duration,
      criterion,
    );
  const perEntry = series((r) =>
    r.redis_entries > 0 ? (r.redis_used_memory_mib * MIB - run.usedMemoryEmpty) / r.redis_entries : null,
  );
  const perEntryVerdict = flatVerdict(perEntry, 0, o.duration, {
    maxSlopeMiBPerMin: 0,
    maxSlopePctPerMin: o.flatPctPerMin,
  });
  const info = {
    'redis-server rss': flatVerdict(
      series((r) => r.rss_mib['redis']),
      0,
      o.duration,
      criterion,
    ),
    'redis used_memory': flatVerdict(
      series((r) => r.redis_used_memory_mib),
      0,
      o.duration,
      criterion,
    ),
    'postgres pss': flatVerdict(
      series((r) => r.rss_mib['postgres_pss']),
      0,
      o.duration,
      criterion,
    ),
  };
  const pass = SERVICES.every((s) => verdicts[s]?.pass) && perEntryVerdict.pass;
  // What a slope means per unit of work: a leak of that many bytes per entry handled would show as it.
  const work: Record<(typeof SERVICES)[number], { unit: string; perS: number }> = {
    feed: {
      unit: 'entry published',
      perS: rate(a, b, 'feed_candles_published', secs) + rate(a, b, 'feed_prices_published', secs),
    },
    runner: { unit: 'strategy step', perS: rate(a, b, 'runner_steps', secs) },
    api: { unit: 'WebSocket message', perS: rate(a, b, 'api_ws_sent', secs) },
  };
  const perWork = Object.fromEntries(
    SERVICES.map((s) => {
      const w = work[s];
      const bytes = (mibPerMin: number | null | undefined): number | null =>
        round(((mibPerMin ?? Number.NaN) * MIB) / (w.perS * 60), 2);
      return [
        s,
        {
          unit: w.unit,
          per_s: round(w.perS, 1),
          slope_bytes_per_unit: bytes(verdicts[s]?.slope_per_min),
          allowed_bytes_per_unit: bytes(verdicts[s]?.allowed_per_min),
        },
      ];
    }),
  ) as Record<string, { unit: string; slope_bytes_per_unit: number | null }>;

  const report = {
    benchmark: 'soak',
    started_at: run.startedAt,
    machine: run.machine,
    layout:
      'redis-server, PostgreSQL (private cluster), `marketbus feed`, `marketbus runner` and `marketbus api` as separate processes; ' +
      'probes in their own processes: the WebSocket clients, one raw XREAD client, the strategy-output reader',
    options: o,
    setup: {
      instruments: run.instruments,
      strategies: run.strategies,
      users: run.users,
      ws_clients: run.clients,
      ws_instruments_watched: run.watchedInstruments,
      raw_baseline_streams: run.rawStreams,
      simulated_speed: o.speed,
      simulated_minutes_per_real_minute: o.speed,
    },
    window: { duration_s: o.duration, warmup_s: o.warmup, measured_s: round(secs, 1) },
    throughput: {
      published: {
        feed_candles_per_s: per('feed_candles_published'),
        feed_candles_1m_per_s: per('feed_candles_1m_received'),
        feed_price_snapshots_per_s: per('feed_prices_published'),
        feed_ticks_per_s: per('feed_ticks'),
        runner_outputs_per_s: per('runner_outputs'),
        history_rows_per_s: per('feed_history_written'),
        redis_xadd_per_s: per('redis_xadd_calls'),
      },
      consumed: {
        runner_candles_per_s: per('runner_candles_acked'),
        runner_strategy_steps_per_s: per('runner_steps'),
        api_relay_entries_read_per_s: per('api_relay_entries_read'),
        api_relay_xread_per_s: per('api_relay_xreads'),
        raw_baseline_entries_per_s: raw ? round(raw.received_measured / secs, 1) : null,
      },
      delivered: {
        ws_messages_sent_per_s: per('api_ws_sent'),
        ws_messages_received_per_s: ws ? round(ws.received_measured / secs, 1) : null,
        ws_messages_per_client_per_s: ws
          ? round(ws.received_measured / secs / Math.max(1, run.clients), 2)
          : null,
      },
      redis_commands_per_s: per('redis_commands'),
    },
    latency: {
      definition:
        'receive time (Date.now()) minus publish time: Redis time of the entry ID for prices, metrics and events; ' +
        "the feed's ingested_at for candles (deterministic IDs). Whole ms, same machine clock.",
      ws_client: ws?.latency ?? null,
      raw_xread_baseline: raw?.latency ?? null,
      ratio_p50: latencyRatio(ws?.latency, raw?.latency, 'p50_ms'),
      ratio_p99: latencyRatio(ws?.latency, raw?.latency, 'p99_ms'),
      redis_time_definition:
        'prices, metrics and events only (Redis-assigned IDs): from the XADD in Redis to the receiver, without the feed outbox wait that candles include',
      ws_client_redis_time: ws?.redis_time ?? null,
      raw_xread_redis_time: raw?.redis_time ?? null,
      redis_time_ratio_p50: latencyRatio(ws?.redis_time, raw?.redis_time, 'p50_ms'),
      redis_time_ratio_p99: latencyRatio(ws?.redis_time, raw?.redis_time, 'p99_ms'),
      ws_by_channel: ws?.by_channel ?? null,
      raw_by_channel: raw?.by_channel ?? null,
      publish_to_strategy_output: strategy?.latency ?? null,
      publish_to_strategy_output_definition:
        'Redis time of the strategy metric entry minus the ingested_at of its candle: consume + step + output write',
      strategy_outputs_unmatched: strategy?.unmatched ?? null,
    },
    delivery: {
      ws_sent_by_server: diff('api_ws_sent'),
      ws_received_by_clients: ws?.received_measured ?? null,
      ws_disconnects: ws?.disconnects ?? null,
      ws_close_codes: ws?.close_codes ?? [],
      ws_out_of_order_or_duplicate: ws?.out_of_order_or_duplicate ?? null,
      ws_server_errors: ws?.server_errors ?? null,
      ws_per_client_min: ws?.per_client_min ?? null,
      ws_per_client_max: ws?.per_client_max ?? null,
      raw_out_of_order_or_duplicate: raw?.out_of_order_or_duplicate ?? null,
    },
    errors: {
      feed_publish_errors: diff('feed_publish_errors'),
      feed_outbox_dropped: b['feed_outbox_dropped'] ?? null,
      feed_outbox_depth_end: b['feed_outbox_depth'] ?? null,
      feed_queue_depth_end: b['feed_queue_depth'] ?? null,
      feed_price_snapshot_errors: diff('feed_price_errors'),
      history_write_errors: b['feed_history_errors'] ?? null,
      history_dropped: b['feed_history_dropped'] ?? null,
      runner_step_errors: b['runner_step_errors'] ?? null,
      runner_output_errors: b['runner_output_errors'] ?? null,
      log_error_lines: run.logErrors,
    },
    redis_memory: {
      used_memory_before_feed_mib: round(run.usedMemoryEmpty / MIB, 2),
      used_memory_end_mib: round(used / MIB, 1),
      used_memory_per_instrument_kib: round(used / run.instruments / 1024, 1),
      entries_held_end: run.entriesEnd,
      bytes_per_entry_held: round((used - run.usedMemoryEmpty) / Math.max(1, run.entriesEnd), 1),
      memory_usage_samples_by_kind: kinds,
      projected_per_instrument_full_retention_kib: round(full / 1024, 1),
      projected_definition:
        'bytes per entry (MEMORY USAGE ... SAMPLES 0 of the sampled streams) x 7 days of 1m candles (10,080) + 2,016 5m bars + 1,200 price snapshots',
      samples: run.memorySamples,
    },
    memory_flat: {
      criterion:
        `each service's RSS (feed, runner, api): least-squares slope over the second half of the run <= ` +
        `max(${o.flatMiBPerMin} MiB/min, ${o.flatPctPerMin} % of its mean per minute); Redis: used_memory ` +
        `(net of what it held before the feed started) per stream entry held must not grow by more than ` +
        `${o.flatPctPerMin} % per minute. redis-server RSS and used_memory grow with the entries retained ` +
        '(7 days of candles are never reached in a run), so they are reported, not judged.',
      verdicts,
      slope_per_unit_of_work: perWork,
      redis_bytes_per_entry: perEntryVerdict,
      reported_not_judged: info,
      pass,
    },
    cpu_mean_pct_measured: Object.fromEntries(
      Object.keys(measured[0]?.cpu_pct ?? {}).map((k) => [k, meanOver(measured, (r) => r.cpu_pct[k])]),
    ),
    series: run.rows.map((r) => ({
      t: r.t,
      measuring: r.measuring,
      rss_mib: Object.fromEntries(Object.entries(r.rss_mib).map(([k, v]) => [k, round(v ?? Number.NaN, 1)])),
      cpu_pct: r.cpu_pct,
      redis_used_memory_mib: round(r.redis_used_memory_mib, 1),
      redis_used_memory_rss_mib: round(r.redis_used_memory_rss_mib, 1),
      redis_entries: r.redis_entries,
      feed_candles_per_s: round(rate(r.prev, r.cur, 'feed_candles_published', r.dt), 1),
      feed_prices_per_s: round(rate(r.prev, r.cur, 'feed_prices_published', r.dt), 1),
      runner_candles_per_s: round(rate(r.prev, r.cur, 'runner_candles_acked', r.dt), 1),
      runner_outputs_per_s: round(rate(r.prev, r.cur, 'runner_outputs', r.dt), 1),
      ws_sent_per_s: round(rate(r.prev, r.cur, 'api_ws_sent', r.dt), 1),
      ws_received_per_s: r.ws ? round(r.ws.received / r.dt, 1) : null,
      ws_p50_ms: r.ws?.latency.p50_ms ?? null,
      ws_p99_ms: r.ws?.latency.p99_ms ?? null,
      raw_p50_ms: r.raw?.latency.p50_ms ?? null,
      raw_p99_ms: r.raw?.latency.p99_ms ?? null,
      strategy_p50_ms: r.strategy?.latency.p50_ms ?? null,
      strategy_p99_ms: r.strategy?.latency.p99_ms ?? null,
      load1: round(r.load1, 2),
    })),
  };

  const plotSeries: Series[] = [
    ...SERVICES.map((s) => ({
      name: `${s} RSS`,
      color: COLORS[s] ?? '#000',
      points: series((r) => r.rss_mib[s]),
    })),
    { name: 'redis-server RSS', color: COLORS['redis'] ?? '#000', points: series((r) => r.rss_mib['redis']) },
    {
      name: 'Redis used_memory',
      color: COLORS['redis_used'] ?? '#000',
      dashed: true,
      points: series((r) => r.redis_used_memory_mib),
    },
  ];
  const plotOptions: PlotOptions = {
    title: `marketbus soak: memory over ${Math.round(o.duration / 60)} min (${pass ? 'flat: PASS' : 'flat: FAIL'})`,
    subtitle:
      `${run.instruments} instruments at ${o.speed}x, ${run.strategies} strategies, ${run.clients} WebSocket clients; ` +
      `${String(run.machine['cpus'])} cores, ${run.startedAt.slice(0, 16).replace('T', ' ')} UTC`,
    yLabel: 'MiB',
    markers: [
      { t: o.warmup, label: 'warm-up over' },
      { t: o.duration / 2, label: 'verdict half' },
    ],
  };
  return { report, plot: { series: plotSeries, options: plotOptions } };
}

export type SoakReport = ReturnType<typeof buildReport>['report'];

/** The figures as a Markdown table (what goes into BENCHMARKS.md). */
export function summaryTable(r: SoakReport): string {
  const t = r.throughput;
  const l = r.latency;
  const m = r.redis_memory;
  const rows: [string, string][] = [
    ['feed: candles published (1m + 5m), entries/s', fmt(t.published.feed_candles_per_s)],
    ['feed: price snapshots published, entries/s', fmt(t.published.feed_price_snapshots_per_s)],
    ['feed: history rows written, rows/s', fmt(t.published.history_rows_per_s)],
    ['runner: candles consumed, entries/s', fmt(t.consumed.runner_candles_per_s, 1)],
    ['runner: outputs published, entries/s', fmt(t.published.runner_outputs_per_s, 1)],
    ['api: relay entries read, entries/s', fmt(t.consumed.api_relay_entries_read_per_s)],
    [
      'WebSocket messages delivered, msg/s (server sent / clients got)',
      `${fmt(t.delivered.ws_messages_sent_per_s)} / ${fmt(t.delivered.ws_messages_received_per_s)}`,
    ],
    ['Redis XADD, calls/s (all writers)', fmt(t.published.redis_xadd_per_s)],
    [
      'publish → WebSocket client, p50 / p99 ms',
      `${fmt(l.ws_client?.p50_ms, 1)} / ${fmt(l.ws_client?.p99_ms, 1)}`,
    ],
    [
      'publish → raw XREAD client, p50 / p99 ms',
      `${fmt(l.raw_xread_baseline?.p50_ms, 1)} / ${fmt(l.raw_xread_baseline?.p99_ms, 1)}`,
    ],
    ['ratio to raw, p50 / p99', `${fmt(l.ratio_p50, 2)} / ${fmt(l.ratio_p99, 2)}`],
    [
      'Redis XADD → WebSocket client, p50 / p99 ms (prices, metrics, events)',
      `${fmt(l.ws_client_redis_time?.p50_ms, 1)} / ${fmt(l.ws_client_redis_time?.p99_ms, 1)}`,
    ],
    [
      'Redis XADD → raw XREAD client, p50 / p99 ms (same entries)',
      `${fmt(l.raw_xread_redis_time?.p50_ms, 1)} / ${fmt(l.raw_xread_redis_time?.p99_ms, 1)}`,
    ],
    [
      'ratio to raw (XADD → client), p50 / p99',
      `${fmt(l.redis_time_ratio_p50, 2)} / ${fmt(l.redis_time_ratio_p99, 2)}`,
    ],
    [
      'publish → strategy output, p50 / p99 ms',
      `${fmt(l.publish_to_strategy_output?.p50_ms, 1)} / ${fmt(l.publish_to_strategy_output?.p99_ms, 1)}`,
    ],
    [
      'WebSocket disconnects / out of order',
      `${fmt(r.delivery.ws_disconnects)} / ${fmt(r.delivery.ws_out_of_order_or_duplicate)}`,
    ],
    [
      'Redis used_memory at the end, MiB (per instrument, KiB)',
      `${fmt(m.used_memory_end_mib, 1)} (${fmt(m.used_memory_per_instrument_kib, 1)})`,
    ],
    ['Redis bytes per entry held', fmt(m.bytes_per_entry_held, 1)],
    [
      'Redis per instrument at full retention (projected), KiB',
      fmt(m.projected_per_instrument_full_retention_kib),
    ],
  ];
  const lines = ['| measure | value |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${v} |`)];
  lines.push(
    '',
    '| series | 1st half mean | 2nd half mean | slope over 2nd half /min | allowed /min | slope per unit of work | verdict |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  );
  const perWork = r.memory_flat.slope_per_unit_of_work;
  const row = (name: string, v: FlatVerdict, work: string, verdict: string): string =>
    `| ${name} | ${fmt(v.first_half_mean, 1)} | ${fmt(v.second_half_mean, 1)} | ${fmt(v.slope_per_min, 3)} | ${fmt(v.allowed_per_min, 2)} | ${work} | ${verdict} |`;
  for (const [name, v] of Object.entries(r.memory_flat.verdicts)) {
    const w = perWork[name];
    const work = w ? `${fmt(w.slope_bytes_per_unit, 2)} B per ${w.unit}` : '';
    lines.push(row(`${name} RSS, MiB`, v, work, v.pass ? 'flat' : 'GROWING'));
  }
  const pe = r.memory_flat.redis_bytes_per_entry;
  lines.push(row('Redis used_memory per entry held, B', pe, '', pe.pass ? 'flat' : 'GROWING'));
  for (const [name, v] of Object.entries(r.memory_flat.reported_not_judged))
    lines.push(row(`${name}, MiB`, v, '', 'not judged'));
  lines.push('', `Memory flat: ${r.memory_flat.pass ? 'PASS' : 'FAIL'} (${r.memory_flat.criterion})`);
  return lines.join('\n');
}
