/** The soak's command-line flags: every one with its unit and default, checked with a message naming it. */
import { parseArgs } from 'node:util';

export interface SoakOptions {
  /** Length of the run once all load is on, seconds (warm-up included). Default 600. */
  readonly duration: number;
  /** First part of the run left out of latency and throughput figures, seconds. Default 60. */
  readonly warmup: number;
  /** Simulated instruments on the feed. Default 2000. */
  readonly instruments: number;
  /** Strategies, created and started through the API. Default 50. */
  readonly strategies: number;
  /** Users signing in (strategies and WebSocket clients are spread over them; at most 20 clients each). Default 10. */
  readonly users: number;
  /** WebSocket clients of the live relay. Default 200. */
  readonly clients: number;
  /** Instruments each WebSocket client watches (1m candles and prices of each). Default 5. */
  readonly wsInstruments: number;
  /** The WebSocket clients' instruments are drawn from the first this-many instruments (the popular ones). Default 200. */
  readonly wsHot: number;
  /** Seconds between two samples (RSS, Redis memory, rates) and progress lines. Default 5. */
  readonly sampleInterval: number;
  /** Simulated clock speed: simulated ms per real ms. Default 60 (one market hour per minute). */
  readonly speed: number;
  /** Ticks per instrument per real second at most (`max_ticks_per_second`). Default 10 (the config's default). */
  readonly maxTicks: number;
  /** Price snapshot cycle, seconds (`price_snap_interval_seconds`). Default 3 (the config's default). */
  readonly priceSnap: number;
  /** redis-server with AOF (appendfsync everysec) instead of no persistence. Default off. */
  readonly aof: boolean;
  /** Services' LOG_LEVEL. Default info. */
  readonly logLevel: string;
  /** The JSON report; the plot goes next to it as `<name>-rss.svg`. Default bench/results/soak-<date>.json. */
  readonly out: string | undefined;
  /** Keep the temporary directory (config, service logs) after the run. Default off. */
  readonly keep: boolean;
  /** Flatness criterion: slope over the second half allowed, MiB per minute. Default 2. */
  readonly flatMiBPerMin: number;
  /** Flatness criterion: or this percentage of the process's mean RSS per minute, if more. Default 1. */
  readonly flatPctPerMin: number;
}

const HELP = `bench/soak.ts: feed + runner + API as separate processes under load, with memory over time.

  node --import tsx bench/soak.ts [flags]      (npm run build first: the services run from dist/)

  --duration <s>          run length once all load is on, warm-up included   (600)
  --warmup <s>            left out of latency and throughput figures         (60)
  --instruments <n>       simulated instruments                              (2000)
  --strategies <n>        strategies started through the API                 (50)
  --users <n>             signed-in users (<= 20 WebSocket clients each)     (10)
  --clients <n>           WebSocket clients                                  (200)
  --ws-instruments <n>    instruments per WebSocket client                   (5)
  --ws-hot <n>            clients pick instruments among the first n         (200)
  --sample-interval <s>   sampling and progress period                       (5)
  --speed <x>             simulated clock speed                              (60)
  --max-ticks <n>         ticks per instrument per real second               (10)
  --price-snap <s>        price snapshot cycle                               (3)
  --aof                   redis-server with AOF everysec                     (off)
  --log-level <level>     services' LOG_LEVEL                                (info)
  --out <file.json>       report; plot next to it                 (bench/results/soak-<date>.json)
  --keep                  keep the temporary directory with the service logs
  --flat-mib-per-min <x>  flat if the 2nd-half RSS slope is <= x MiB/min ... (2)
  --flat-pct-per-min <x>  ... or <= x % of the mean RSS per minute           (1)
`;

function num(name: string, raw: string | undefined, min: number, integer: boolean): number {
  const n = Number(raw);
  if (raw === undefined || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n)))
    throw new Error(
      `--${name}: expected ${integer ? 'an integer' : 'a number'} >= ${min}, got ${String(raw)}`,
    );
  return n;
}

export function parseOptions(argv: readonly string[]): SoakOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      duration: { type: 'string', default: '600' },
      warmup: { type: 'string', default: '60' },
      instruments: { type: 'string', default: '2000' },
      strategies: { type: 'string', default: '50' },
      users: { type: 'string', default: '10' },
      clients: { type: 'string', default: '200' },
      'ws-instruments': { type: 'string', default: '5' },
      'ws-hot': { type: 'string', default: '200' },
      'sample-interval': { type: 'string', default: '5' },
      speed: { type: 'string', default: '60' },
      'max-ticks': { type: 'string', default: '10' },
      'price-snap': { type: 'string', default: '3' },
      aof: { type: 'boolean', default: false },
      'log-level': { type: 'string', default: 'info' },
      out: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'flat-mib-per-min': { type: 'string', default: '2' },
      'flat-pct-per-min': { type: 'string', default: '1' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 'help';
  }
  const o: SoakOptions = {
    duration: num('duration', values.duration, 10, false),
    warmup: num('warmup', values.warmup, 0, false),
    instruments: num('instruments', values.instruments, 1, true),
    strategies: num('strategies', values.strategies, 0, true),
    users: num('users', values.users, 1, true),
    clients: num('clients', values.clients, 0, true),
    wsInstruments: num('ws-instruments', values['ws-instruments'], 1, true),
    wsHot: num('ws-hot', values['ws-hot'], 1, true),
    sampleInterval: num('sample-interval', values['sample-interval'], 1, false),
    speed: num('speed', values.speed, 0.001, false),
    maxTicks: num('max-ticks', values['max-ticks'], 0, false),
    priceSnap: num('price-snap', values['price-snap'], 1, false),
    aof: values.aof,
    logLevel: values['log-level'],
    out: values.out,
    keep: values.keep,
    flatMiBPerMin: num('flat-mib-per-min', values['flat-mib-per-min'], 0, false),
    flatPctPerMin: num('flat-pct-per-min', values['flat-pct-per-min'], 0, false),
  };
  if (o.warmup >= o.duration) throw new Error('--warmup must be shorter than --duration');
  if (o.clients > o.users * 20)
    throw new Error(
      `--clients ${o.clients} needs at least ${Math.ceil(o.clients / 20)} --users (the API allows 20 live connections per user)`,
    );
  if (o.instruments > 10_000) throw new Error('--instruments: at most 10000 (market_data.instruments)');
  if (o.priceSnap > 60) throw new Error('--price-snap: at most 60 (price_snap_interval_seconds)');
  return o;
}
