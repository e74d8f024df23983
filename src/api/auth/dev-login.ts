/**
 * Development sign-in: a one-time link, never an ambient rule. When it is asked for (`marketbus up
 * --dev-login`, `marketbus api --dev-login`, `MARKETBUS_DEV_LOGIN=1`; `up` turns it on by itself when
 * no bot token is set) and never in production, the API makes one random 256-bit token at start and
 * prints `<api>/auth/dev?token=<token>` on stderr. `GET /auth/dev` with it, once and within
 * `MARKETBUS_DEV_LOGIN_TTL_S`, starts an ordinary session of the `local` user; afterwards the token
 * is refused (restart to get a new link). Where a request comes from, or which proxy header it has,
 * plays no part: the token is the only way in.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** The user development sign-in signs in. */
export const LOCAL_USER_ID = 'local';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export class DevLoginLink {
  /** The token, to be printed once; compared by its hash. */
  readonly token = randomBytes(32).toString('base64url');
  private hash: Buffer | null = digest(this.token);
  private readonly deadline: number;

  /** Valid for `ttlS` seconds from now, or until used. */
  constructor(ttlS: number) {
    this.deadline = Date.now() + ttlS * 1000;
  }

  /** The sign-in URL under `base` (`http://host:port`). */
  url(base: string): string {
    return `${base}/auth/dev?token=${this.token}`;
  }

  /** True once, for the right token within its lifetime; false ever after. */
  consume(given: string): boolean {
    if (this.hash === null) return false;
    if (Date.now() > this.deadline) {
      this.hash = null;
      return false;
    }
    if (!timingSafeEqual(digest(given), this.hash)) return false;
    this.hash = null;
    return true;
  }
}
