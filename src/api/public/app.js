// The marketbus dashboard: plain ES module, no build step. Data comes from the API's REST routes and
// the live WebSocket relay (/api/v1/live/ws); the chart is lightweight-charts (window.LightweightCharts).
const $ = (sel) => document.querySelector(sel);
// The feed's sources: one `md.status.<source>` each (docs/contracts.md §8); a venue is one source.
const SOURCES = ['simulated', 'binance', 'bybit', 'okx', 'replay'];
// Worst first: the header badge shows the worst state of the sources heard from.
const STATE_ORDER = ['DISCONNECTED', 'RECOVERING', 'IDLE', 'STREAM'];
const state = {
  instruments: new Map(),
  /** source -> {state, since, reason}, from its latest status entry. */
  venues: new Map(),
  chartKey: null,
  series: null,
  chart: null,
  ws: null,
  lastIds: new Map(),
  strategies: [],
  pending: new Map(),
  requestId: 0,
};

function fmt(n, digits = 2) {
  return typeof n === 'number' && Number.isFinite(n) ? n.toFixed(digits) : '–';
}

async function api(path, opts = {}) {
  // Only requests with a body say it is JSON (a bodyless JSON POST is refused).
  const res = await fetch(path, {
    credentials: 'same-origin',
    headers: opts.body ? { 'content-type': 'application/json' } : {},
    ...opts,
  });
  const body = res.headers.get('content-type')?.includes('json') ? await res.json() : await res.text();
  if (!res.ok) throw Object.assign(new Error(body?.error ?? res.statusText), { status: res.status, body });
  return body;
}

// ---- live relay -------------------------------------------------------------------------------
function connect() {
  const ws = new WebSocket(
    `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/live/ws`,
  );
  state.ws = ws;
  ws.onopen = () => {
    $('#ws-state').textContent = 'live';
    state.pending.clear();
    for (const source of SOURCES)
      send({ op: 'subscribe', channel: 'status', source, from: lastId(`status:${source}`, '$') });
    send({ op: 'subscribe', channel: 'events', from: lastId('events', '$') });
    if (state.chartKey) subscribeChart(state.chartKey);
    for (const key of state.instruments.keys())
      send({ op: 'subscribe', channel: 'prices', instrument: key, from: lastId(`prices:${key}`, '$') });
  };
  ws.onmessage = (m) => onMessage(JSON.parse(m.data));
  ws.onclose = () => {
    $('#ws-state').textContent = 'reconnecting…';
    setTimeout(connect, 1000); // resume from the last IDs seen
  };
}

function send(msg) {
  if (state.ws?.readyState !== WebSocket.OPEN) return;
  // Subscriptions carry an id, so a refusal the relay asks to retry (docs/contracts.md §14.3) is retried.
  if (msg.op === 'subscribe') {
    msg = { ...msg, id: ++state.requestId };
    state.pending.set(msg.id, msg);
  }
  state.ws.send(JSON.stringify(msg));
}

const RETRIED = new Set(['instrument_not_served', 'subscribe_rate_limited', 'relay_full', 'unavailable']);

function onReply(m) {
  const req = state.pending.get(m.id);
  state.pending.delete(m.id);
  if (m.op !== 'error' || !req || !RETRIED.has(m.code)) return;
  const ws = state.ws;
  const { id: _id, ...again } = req;
  setTimeout(() => state.ws === ws && send(again), m.retry_after_ms ?? 5000);
}

function lastId(key, fallback) {
  return state.lastIds.get(key) ?? fallback;
}

function onMessage(m) {
  if (m.op === 'ping') return send({ op: 'pong' });
  if (m.op === 'subscribed' || m.op === 'error') return onReply(m);
  if (!m.channel || !m.fields) return;
  const f = m.fields;
  if (m.channel === 'status') {
    state.lastIds.set(`status:${f.source}`, m.id);
    return onStatus(f);
  }
  if (m.channel === 'prices') {
    state.lastIds.set(`prices:${f.instrument_key}`, m.id);
    return onPrice(f);
  }
  if (m.channel === 'candles') {
    state.lastIds.set(`candles:${f.instrument_key}`, m.id);
    return onCandle(f);
  }
  if (m.channel === 'events') {
    state.lastIds.set('events', m.id);
    return onEvent(f);
  }
}

function onStatus(f) {
  state.venues.set(f.source, { state: f.state, since: f.state_since, reason: f.reason ?? '' });
  renderBadge();
  let instruments = {};
  try {
    instruments = JSON.parse(f.instruments ?? '{}');
  } catch {
    instruments = {};
  }
  for (const [key, i] of Object.entries(instruments)) {
    const known = state.instruments.has(key);
    state.instruments.set(key, { ...state.instruments.get(key), ...i, source: f.source });
    if (!known) {
      send({ op: 'subscribe', channel: 'prices', instrument: key });
      const opt = document.createElement('option');
      opt.value = opt.textContent = key;
      $('#chart-instrument').append(opt);
      if (!state.chartKey) selectChart(key);
    }
  }
  renderPrices();
}

function onPrice(f) {
  const i = state.instruments.get(f.instrument_key) ?? {};
  state.instruments.set(f.instrument_key, {
    ...i,
    bid: Number(f.bid),
    ask: Number(f.ask),
    mid: Number(f.mid),
    tickTs: Date.now() /* received; simulated tick times may run ahead */,
    state: 'ok',
  });
  renderPrices();
}

/** The header badge: one source's state, or the worst of several with each one's in the tooltip. */
function renderBadge() {
  const badge = $('#feed-state');
  const venues = [...state.venues.entries()];
  const worst = venues
    .map(([, v]) => v.state)
    .sort((a, b) => STATE_ORDER.indexOf(a) - STATE_ORDER.indexOf(b))[0];
  badge.dataset.state = worst ?? '?';
  badge.textContent =
    venues.length === 1
      ? `feed ${venues[0][0]}: ${venues[0][1].state} since ${new Date(venues[0][1].since).toLocaleTimeString()}`
      : `feed: ${venues.map(([name, v]) => `${name} ${v.state}`).join(', ')}`;
  badge.title = venues.map(([name, v]) => `${name}: ${v.reason}`).join('\n');
}

/** The instruments grouped by source (venue), each group headed by that source's feed state. */
function renderPrices() {
  const groups = new Map();
  for (const [key, i] of state.instruments) {
    const source = i.source ?? '?';
    if (!groups.has(source)) groups.set(source, []);
    groups.get(source).push([key, i]);
  }
  const rows = [];
  for (const [source, members] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    rows.push(venueRow(source, members.length));
    for (const [key, i] of members) rows.push(instrumentRow(key, i));
  }
  $('#prices tbody').replaceChildren(...rows);
}

function venueRow(source, count) {
  const v = state.venues.get(source);
  const tr = document.createElement('tr');
  tr.className = 'venue';
  tr.dataset.venue = source;
  tr.dataset.state = v?.state ?? '?';
  const th = document.createElement('th');
  th.colSpan = 6;
  th.scope = 'rowgroup';
  const name = document.createElement('span');
  name.className = 'venue-name';
  name.textContent = `${source} (${count})`;
  const badge = document.createElement('span');
  badge.className = 'badge venue-state';
  badge.dataset.state = v?.state ?? '?';
  badge.textContent = v ? `${v.state} since ${new Date(v.since).toLocaleTimeString()}` : 'no status';
  badge.title = v?.reason ?? '';
  th.append(name, ' ', badge);
  tr.append(th);
  return tr;
}

function instrumentRow(key, i) {
  const age = i.tickTs ? (Date.now() - i.tickTs) / 1000 : i.tickAgeSeconds;
  const tr = row([
    key,
    i.state ?? 'waiting',
    [fmt(i.bid, 4), 'bid'],
    [fmt(i.ask, 4), 'ask'],
    [fmt(i.mid, 4), 'mid'],
    age == null ? '–' : `${fmt(age, 1)} s`,
  ]);
  tr.dataset.state = i.state ?? 'waiting';
  tr.dataset.key = key;
  tr.dataset.venue = i.source ?? '?';
  // A stopped instrument says why (its market closed, or the venue refused it).
  if (i.reason) tr.title = i.reason;
  return tr;
}

/**
 * A table row of text cells: data from the API or the streams is always set as text, never parsed as
 * HTML. A cell is its text, or [text, class name].
 */
function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    const [text, cls] = Array.isArray(c) ? c : [c, undefined];
    td.textContent = String(text);
    if (cls) td.className = cls;
    tr.append(td);
  }
  return tr;
}

function button(action, label) {
  const b = document.createElement('button');
  b.dataset.action = action;
  b.textContent = label;
  return b;
}

// ---- chart ------------------------------------------------------------------------------------
function selectChart(key) {
  if (state.chartKey)
    send({ op: 'unsubscribe', channel: 'candles', instrument: state.chartKey, timeframe: '1m' });
  state.chartKey = key;
  $('#chart-instrument').value = key;
  if (!state.chart) {
    state.chart = LightweightCharts.createChart($('#chart'), {
      autoSize: true,
      timeScale: { timeVisible: true },
    });
  }
  if (state.series) state.chart.removeSeries(state.series);
  state.series = state.chart.addSeries(LightweightCharts.CandlestickSeries);
  state.candles = 0;
  subscribeChart(key);
}

function subscribeChart(key) {
  // The last six hours, then live.
  send({
    op: 'subscribe',
    channel: 'candles',
    instrument: key,
    timeframe: '1m',
    from: lastId(`candles:${key}`, `${Date.now() - 6 * 3600_000}-0`),
  });
}

function onCandle(f) {
  if (f.instrument_key !== state.chartKey || !state.series) return;
  state.series.update({
    time: Date.parse(f.ts_open) / 1000,
    open: Number(f.open),
    high: Number(f.high),
    low: Number(f.low),
    close: Number(f.close),
  });
  state.candles = (state.candles ?? 0) + 1;
  $('#chart-last').textContent = `${state.candles} candles, last ${f.ts_open.slice(11, 16)} close ${f.close}`;
  $('#chart').dataset.candles = String(state.candles);
}

// ---- strategies and events --------------------------------------------------------------------
async function loadStrategies() {
  // The list is paged (limit, after -> next_after): read every page.
  const strategies = [];
  let after = null;
  do {
    const page = await api(`/strategies?limit=200${after ? `&after=${encodeURIComponent(after)}` : ''}`);
    strategies.push(...page.strategies);
    after = page.next_after;
  } while (after);
  state.strategies = strategies;
  $('#strategies tbody').replaceChildren(
    ...strategies.map((s) => {
      const running = s.status === 'running';
      const tr = row([
        s.name,
        s.spec?.signal_template ?? '',
        s.spec?.instrument_key ?? '',
        [s.status, 'status'],
      ]);
      tr.dataset.id = s.strategy_id;
      const actions = document.createElement('td');
      actions.append(
        button(running ? 'stop' : 'run', running ? 'Stop' : 'Run'),
        ' ',
        button('backtest', 'Backtest'),
      );
      tr.append(actions);
      return tr;
    }),
  );
}

async function createStrategy(form) {
  const data = new FormData(form);
  const key = String(data.get('instrument_key'));
  const template = String(data.get('signal_template')).trim();
  const m = /^(MA|EMA|RSI|BB)\(([^)]*)\)$/.exec(template);
  const args = (m?.[2] ?? '').split(',').map((x) => Number(x.trim()));
  const params = {
    MA: { fast: args[0], slow: args[1] },
    EMA: { fast: args[0], slow: args[1] },
    RSI: { period: args[0], lower: args[1] ?? 30, upper: args[2] ?? 70 },
    BB: { period: args[0], k: args[1] },
  }[m?.[1] ?? 'MA'];
  const [, marketType = '', symbol = ''] = key.split(':');
  $('#create-error').textContent = '';
  try {
    await api('/strategies', {
      method: 'POST',
      body: JSON.stringify({
        instrument_id: { market_id: 1, symbol },
        instrument_key: key,
        market_type: marketType,
        timeframe: '1m',
        indicators: [{ name: m?.[1] ?? 'MA', params }],
        signal_template: template,
      }),
    });
    await loadStrategies();
  } catch (err) {
    $('#create-error').textContent = err.message;
  }
}

function onEvent(f) {
  let p = {};
  try {
    p = JSON.parse(f.payload ?? '{}');
  } catch {
    p = {};
  }
  const li = document.createElement('li');
  li.dataset.type = f.type;
  const at = p.candle?.ts_open ? ` @ ${p.candle.ts_open.slice(11, 16)}` : '';
  li.textContent = `${f.type}${p.signal ? ` ${p.signal}` : ''}${p.price ? ` ${fmt(Number(p.price))}` : ''} — ${p.strategy_name ?? p.strategy_id}${at}`;
  $('#events').prepend(li);
  while ($('#events').children.length > 200) $('#events').lastChild.remove();
  if (f.type === 'started' || f.type === 'stopped' || f.type === 'failed') void loadStrategies();
}

// ---- backtests --------------------------------------------------------------------------------
async function runBacktest(strategyId) {
  $('#backtest').hidden = false;
  $('#backtest-summary').textContent = '';
  // The last week; `to` a day ahead because a simulated feed at --speed runs ahead of the clock.
  const to = Date.now() + 86_400_000;
  let b;
  try {
    b = await api(`/strategies/${strategyId}/backtests`, {
      method: 'POST',
      body: JSON.stringify({ from: to - 8 * 86_400_000, to }),
    });
  } catch (err) {
    $('#backtest-status').textContent = err.message;
    return;
  }
  for (;;) {
    $('#backtest-status').textContent = b.status;
    $('#backtest-status').dataset.status = b.status;
    $('#backtest-progress').value = b.progress ?? 0;
    if (['done', 'failed', 'cancelled'].includes(b.status)) break;
    await new Promise((r) => setTimeout(r, 500));
    b = await api(`/backtests/${b.id}`);
  }
  const r = b.result;
  if (!r) return void ($('#backtest-summary').textContent = b.error ?? '');
  const s = r.summary ?? {};
  $('#backtest-summary').textContent = Object.entries(s)
    .map(([k, v]) => `${k}: ${typeof v === 'number' ? fmt(v) : v}`)
    .join(' · ');
  state.equityChart ??= LightweightCharts.createChart($('#equity'), {
    autoSize: true,
    timeScale: { timeVisible: true },
  });
  if (state.equitySeries) state.equityChart.removeSeries(state.equitySeries);
  state.equitySeries = state.equityChart.addSeries(LightweightCharts.LineSeries);
  const points = (r.equity_curve ?? []).map((p) => ({ time: Math.floor(p.ts / 1000), value: p.equity }));
  state.equitySeries.setData(points.filter((p, i) => i === 0 || p.time > points[i - 1].time));
  $('#equity').dataset.points = String(points.length);
}

// ---- streams ----------------------------------------------------------------------------------
async function loadStreams() {
  const report = await api('/api/v1/streams');
  const rows = [];
  for (const s of report.streams) {
    const bad = s.flags.length > 0 ? 'bad' : 'ok';
    const groups = s.groups.length > 0 ? s.groups : [null];
    groups.forEach((g, i) => {
      const tr = row([
        i === 0 ? s.stream : '',
        i === 0 ? s.length : '',
        g?.name ?? '–',
        g?.lag ?? '–',
        g?.pending ?? '–',
        i === 0 ? (s.deadLetters ?? '–') : '',
        i === 0 ? s.flags.map((x) => x.kind).join(', ') || 'ok' : '',
      ]);
      tr.dataset.health = bad;
      rows.push(tr);
    });
  }
  $('#streams tbody').replaceChildren(...rows);
}

// ---- start ------------------------------------------------------------------------------------
$('#chart-instrument').addEventListener('change', (e) => selectChart(e.target.value));
$('#create-strategy').addEventListener('submit', (e) => {
  e.preventDefault();
  void createStrategy(e.target);
});
$('#strategies').addEventListener('click', async (e) => {
  const button = e.target.closest('button[data-action]');
  if (!button) return;
  const id = button.closest('tr').dataset.id;
  if (button.dataset.action === 'backtest') return void runBacktest(id);
  button.disabled = true;
  await api(`/strategies/${id}/${button.dataset.action}`, { method: 'POST' }).catch((err) =>
    alert(err.message),
  );
  await loadStrategies();
});
$('#refresh-streams').addEventListener('click', () => void loadStreams());
setInterval(renderPrices, 1000);
setInterval(() => void loadStreams().catch(() => undefined), 5000);

// Sign-in is Telegram (POST /auth/telegram/login) or, in development, the one-time link marketbus
// prints at start (/auth/dev?token=...); either leaves a session cookie this page only reads through
// /auth/current-user.
for (const [sel, path] of [
  ['#logout', '/auth/logout'],
  ['#logout-all', '/auth/logout-all'],
]) {
  $(sel).addEventListener('click', async () => {
    await api(path, { method: 'POST' }).catch((err) => alert(err.message));
    location.reload();
  });
}
try {
  const me = await api('/auth/current-user');
  $('#user').textContent = `signed in as ${me.username ?? me.user_id}`;
  $('#logout').hidden = $('#logout-all').hidden = false;
  await loadStrategies();
} catch {
  $('#user').textContent =
    'not signed in: sign in with Telegram, or open the development sign-in link marketbus printed';
}
void loadStreams().catch(() => undefined);
connect();
