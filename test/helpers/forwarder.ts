/**
 * A TCP forwarder on loopback that rewrites nothing: what nginx's default `proxy_pass`, socat,
 * `ssh -L` or `kubectl port-forward` put in front of the API. Every connection it accepts is piped
 * byte for byte to the target, so the API sees the forwarder's loopback address and no proxy header:
 * the setting the security tests attack (nothing may be trusted because of where a request seems to
 * come from).
 */
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll } from 'vitest';

export interface Forwarder extends AsyncDisposable {
  /** `http://127.0.0.1:<port>` of the forwarder. */
  readonly url: string;
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

const open: Forwarder[] = [];
afterAll(async () => {
  await Promise.allSettled(open.map((f) => f.close()));
});

/** Forward every connection on a free loopback port to `target` (`http://host:port`). */
export async function startForwarder(target: string): Promise<Forwarder> {
  const t = new URL(target);
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((client) => {
    accepted += 1;
    const upstream = createConnection({ host: t.hostname.replace(/^\[|\]$/g, ''), port: Number(t.port) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  let closing: Promise<void> | undefined;
  const f: Forwarder = {
    url: `http://127.0.0.1:${port}`,
    port,
    get accepted() {
      return accepted;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
    [Symbol.asyncDispose]() {
      return f.close();
    },
  };
  open.push(f);
  return f;
}
