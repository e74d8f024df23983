/**
 * A small HTTP server for Prometheus scrapes: `GET /metrics` from a registry, `GET /healthz`. Used by
 * services that run alone (feed on 8001, runner on 9203); the API serves its own `/metrics`.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { disposable } from './stack.js';

export interface MetricsServer extends AsyncDisposable {
  readonly port: number;
  /** Same as `[Symbol.asyncDispose]()`. Idempotent. */
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  /** Served on `/metrics`. */
  readonly registry: Registry;
  /**
   * TCP port; 0 = any free port (see `MetricsServer.port`).
   */
  readonly port: number;
  /**
   * Listen address.
   * @defaultValue `0.0.0.0`
   */
  readonly host?: string;
}

export function startMetrics(o: MetricsServerOptions): Promise<MetricsServer> {
  return startMetricsServer(o.registry, o.port, o.host);
}

export async function startMetricsServer(
  registry: Registry,
  port: number,
  host = '0.0.0.0',
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    res.writeHead(404).end();
  });
  server.listen(port, host);
  await once(server, 'listening');
  const addr = server.address();
  const close = disposable(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return {
    port: typeof addr === 'object' && addr ? addr.port : port,
    close: close.close,
    [Symbol.asyncDispose]: close.close,
  };
}
