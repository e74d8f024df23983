/**
 * The browser-facing headers of every answer, set by `@fastify/helmet`: a Content-Security-Policy that
 * lets the dashboard (src/api/public/: its own script, style and chart library, a WebSocket to this
 * origin) load nothing from elsewhere and run no inline script (and no inline style but the chart
 * library's one, by hash), never be framed (`frame-ancestors
 * 'none'`, and `X-Frame-Options: DENY` for older browsers), plus helmet's other headers
 * (`X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, `Cross-Origin-Opener-Policy`,
 * `Cross-Origin-Resource-Policy`, HSTS, ...). docs/security.md lists them.
 *
 * With a bot configured, a page may embed the Telegram Login Widget: its script from
 * `https://telegram.org` and its frame from `https://oauth.telegram.org`, and those two origins only.
 */
import type { FastifyHelmetOptions } from '@fastify/helmet';

/** The Telegram Login Widget's script and frame origins (core.telegram.org/widgets/login). */
export const TELEGRAM_WIDGET_SCRIPT = 'https://telegram.org';
export const TELEGRAM_WIDGET_FRAME = 'https://oauth.telegram.org';

/**
 * The one inline stylesheet the dashboard needs: the attribution logo's rules that lightweight-charts
 * (5.2.1, package.json) inserts with each chart. test/e2e/dashboard.test.ts fails on any CSP violation,
 * so a library update that changes them shows there.
 */
const CHART_LOGO_STYLE = "'sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY='";

/** helmet's options: the policy above; `telegramWidget` when a bot token is configured. */
export function securityHeaders(o: { readonly telegramWidget: boolean }): FastifyHelmetOptions {
  const self = "'self'";
  return {
    global: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: [self],
        baseUri: [self],
        connectSrc: [self], // fetch and the live relay's WebSocket (same origin, ws: or wss:)
        fontSrc: [self],
        formAction: [self],
        frameAncestors: ["'none'"],
        frameSrc: o.telegramWidget ? [TELEGRAM_WIDGET_FRAME] : ["'none'"],
        imgSrc: [self, 'data:'],
        objectSrc: ["'none'"],
        scriptSrc: o.telegramWidget ? [self, TELEGRAM_WIDGET_SCRIPT] : [self],
        scriptSrcAttr: ["'none'"],
        styleSrc: [self, CHART_LOGO_STYLE],
      },
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
  };
}
