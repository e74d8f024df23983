/**
 * Scraping the services' Prometheus `/metrics` (text format 0.0.4): the samples of each metric, summed
 * over label sets or picked by one label, which is all the soak needs to turn counters into rates.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1] as string] = l[2] as string;
    const value = Number(m[3]);
    if (Number.isFinite(value)) out.push({ name: m[1] as string, labels, value });
  }
  return out;
}

/** One scrape of one service. */
export class Scrape {
  constructor(readonly samples: readonly Sample[]) {}

  /** Sum of the samples of `name` (whose labels include `where`, when given); 0 when absent. */
  sum(name: string, where: Readonly<Record<string, string>> = {}): number {
    let s = 0;
    for (const x of this.samples) {
      if (x.name !== name) continue;
      if (Object.entries(where).every(([k, v]) => x.labels[k] === v)) s += x.value;
    }
    return s;
  }
}

/** GET `url` and parse it; an empty scrape when the service does not answer within `timeoutMs`. */
export async function scrape(url: string, timeoutMs = 3000): Promise<Scrape> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return new Scrape([]);
    return new Scrape(parseMetrics(await res.text()));
  } catch {
    return new Scrape([]);
  }
}
