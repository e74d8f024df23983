/**
 * A live relay client that churns subscriptions, in its own process (so its own work does not slow the
 * process it is measured against). Configured by environment: WS_URL (`ws://.../api/v1/live/ws`),
 * COOKIE, KEYS (comma-separated instrument keys), CONNECTIONS, BATCH. Each connection subscribes to
 * BATCH keys, waits for every answer, unsubscribes from them, waits again, and so on with the next keys,
 * as fast as the server answers; a connection the server closes is opened again at once. Prints
 * "ready" once all can connect; on SIGTERM prints `{"requests":n,"errors":{code:n},"closes":n}` and exits.
 */
import WebSocket from 'ws';

const env = (k: string): string => {
  const v = process.env[k];
  if (v === undefined) throw new Error(`missing ${k}`);
  return v;
};
const keys = env('KEYS').split(',');
const batch = Number(env('BATCH'));
let requests = 0;
const errors: Record<string, number> = {};
let stop = false;

async function open(): Promise<WebSocket> {
  const ws = new WebSocket(env('WS_URL'), { headers: { cookie: env('COOKIE') } });
  ws.on('error', () => undefined); // a refused or reset connection ends in 'close' too
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('close', reject);
  });
  return ws;
}

async function churn(ws: WebSocket, start: number): Promise<void> {
  let answers = 0;
  let wake: (() => void) | undefined;
  ws.on('message', (data: Buffer) => {
    const m = JSON.parse(data.toString('utf8')) as { op?: string; code?: string };
    if (m.op === 'subscribed' || m.op === 'unsubscribed' || m.op === 'error') answers++;
    if (m.op === 'error' && m.code) errors[m.code] = (errors[m.code] ?? 0) + 1;
    wake?.();
  });
  ws.on('close', () => wake?.());
  let i = start;
  while (!stop && ws.readyState === WebSocket.OPEN) {
    const some = Array.from({ length: batch }, (_, j) => keys[(i + j) % keys.length]);
    i += batch;
    for (const op of ['subscribe', 'unsubscribe']) {
      const want = answers + some.length;
      for (const instrument of some) ws.send(JSON.stringify({ op, channel: 'prices', instrument }));
      requests += some.length;
      while (answers < want && ws.readyState === WebSocket.OPEN) await new Promise<void>((r) => (wake = r));
    }
  }
}

const sockets = new Set<WebSocket>();
let closes = 0;
/** One connection slot: churn on it; when the server closes it (flood limit), connect again. */
async function slot(n: number): Promise<void> {
  while (!stop) {
    let ws: WebSocket;
    try {
      ws = await open();
    } catch {
      await new Promise((r) => setTimeout(r, 20)); // refused (429 while the closed one is released)
      continue;
    }
    sockets.add(ws);
    if (++connected === connections) process.stdout.write('ready\n');
    const closed = new Promise((r) => ws.once('close', r));
    await churn(ws, n * batch);
    await closed;
    sockets.delete(ws);
    if (!stop) closes++;
  }
}
const connections = Number(env('CONNECTIONS'));
let connected = 0;
const loops = Array.from({ length: connections }, (_, n) => slot(n));
process.on('SIGTERM', () => {
  stop = true;
  for (const ws of sockets) ws.terminate();
  void Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 2000))]).then(() => {
    process.stdout.write(`${JSON.stringify({ requests, errors, closes })}\n`);
    process.exit(0);
  });
});
