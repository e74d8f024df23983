/**
 * The soak's memory plot as a self-contained SVG (no dependency, diffable, rendered by GitHub): one line
 * per series over minutes of the run, a y axis from 0, a legend, and dotted markers at the end of the
 * warm-up and at the start of the half the flatness verdict is computed over.
 */
import type { Point } from './verdict.js';

export interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly Point[];
  readonly dashed?: boolean;
}

export interface PlotOptions {
  readonly title: string;
  readonly subtitle: string;
  readonly yLabel: string;
  /** Vertical markers, seconds since start. */
  readonly markers: readonly { readonly t: number; readonly label: string }[];
  readonly width?: number;
  readonly height?: number;
}

/** 1, 2 or 5 times a power of ten, so that about `count` ticks cover `max`. */
function niceStep(max: number, count: number): number {
  const raw = max / Math.max(1, count);
  const pow = 10 ** Math.floor(Math.log10(raw));
  const f = raw / pow;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * pow;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const f1 = (x: number): string => x.toFixed(1);

export function linePlotSvg(series: readonly Series[], o: PlotOptions): string {
  const W = o.width ?? 960;
  const H = o.height ?? 540;
  const m = { left: 70, right: 190, top: 64, bottom: 56 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const all = series.flatMap((s) => s.points);
  const tMax = Math.max(60, ...all.map((p) => p.t));
  const vMax = Math.max(1, ...all.map((p) => p.v)) * 1.08;
  const yStep = niceStep(vMax, 6);
  const yTop = Math.ceil(vMax / yStep) * yStep;
  const xStepMin = niceStep(tMax / 60, 10);
  const x = (t: number): number => m.left + (t / tMax) * pw;
  const y = (v: number): number => m.top + ph - (v / yTop) * ph;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${m.left}" y="24" font-size="16" font-weight="bold">${esc(o.title)}</text>`,
    `<text x="${m.left}" y="44" fill="#555">${esc(o.subtitle)}</text>`,
  );
  for (let v = 0; v <= yTop + 1e-9; v += yStep) {
    out.push(
      `<line x1="${m.left}" y1="${f1(y(v))}" x2="${m.left + pw}" y2="${f1(y(v))}" stroke="#e5e5e5"/>`,
      `<text x="${m.left - 8}" y="${f1(y(v) + 4)}" text-anchor="end" fill="#333">${Number(v.toPrecision(6))}</text>`,
    );
  }
  for (let mins = 0; mins * 60 <= tMax + 1e-9; mins += xStepMin) {
    const px = x(mins * 60);
    out.push(
      `<line x1="${f1(px)}" y1="${m.top + ph}" x2="${f1(px)}" y2="${m.top + ph + 5}" stroke="#333"/>`,
      `<text x="${f1(px)}" y="${m.top + ph + 20}" text-anchor="middle" fill="#333">${Number(mins.toPrecision(6))}</text>`,
    );
  }
  out.push(
    `<line x1="${m.left}" y1="${m.top + ph}" x2="${m.left + pw}" y2="${m.top + ph}" stroke="#333"/>`,
    `<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + ph}" stroke="#333"/>`,
    `<text x="${m.left + pw / 2}" y="${H - 12}" text-anchor="middle" fill="#333">minutes since start</text>`,
    `<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#333">${esc(o.yLabel)}</text>`,
  );
  for (const mk of o.markers) {
    const px = x(mk.t);
    out.push(
      `<line x1="${f1(px)}" y1="${m.top}" x2="${f1(px)}" y2="${m.top + ph}" stroke="#888" stroke-dasharray="3 4"/>`,
      `<text x="${f1(px + 4)}" y="${m.top + 12}" fill="#666" font-size="11">${esc(mk.label)}</text>`,
    );
  }
  series.forEach((s, i) => {
    if (s.points.length > 0) {
      const d = s.points.map((p, k) => `${k === 0 ? 'M' : 'L'}${f1(x(p.t))},${f1(y(p.v))}`).join(' ');
      out.push(
        `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="7 4"' : ''}/>`,
      );
    }
    const ly = m.top + 10 + i * 22;
    const lx = m.left + pw + 16;
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${s.color}" stroke-width="3"${s.dashed ? ' stroke-dasharray="7 4"' : ''}/>`,
      `<text x="${lx + 30}" y="${ly + 4}" fill="#222">${esc(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
