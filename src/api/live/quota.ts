/**
 * What the live relay of one API process holds per user and in total: connections (counted from before
 * the upgrade, so parallel upgrades of one user cannot pass the limit together) and subscriptions
 * (across all of a user's connections, and for the whole process). Every slot is taken before the work
 * it pays for and released exactly once.
 */

/** The limits of {@link LiveQuota} (fields of `LiveLimits`). */
export interface LiveQuotaLimits {
  readonly maxClientsPerUser: number;
  readonly maxSubscriptionsPerUser: number;
  readonly maxSubscriptionsTotal: number;
}

/** Why a subscription slot was refused. */
export type SubscriptionRefusal = 'user' | 'total';

/** Gives back a slot; calling it again does nothing. */
export type Release = () => void;

export class LiveQuota {
  private readonly connections = new Map<string, number>();
  private readonly subscriptions = new Map<string, number>();
  private total = 0;

  constructor(private readonly limits: LiveQuotaLimits) {}

  /** A connection slot of `userId` (an upgrade in progress or an open connection), or null when full. */
  reserveConnection(userId: string): Release | null {
    if ((this.connections.get(userId) ?? 0) >= this.limits.maxClientsPerUser) return null;
    add(this.connections, userId, 1);
    return once(() => add(this.connections, userId, -1));
  }

  /** A subscription slot of `userId`, or why there is none. */
  takeSubscription(userId: string): Release | SubscriptionRefusal {
    if ((this.subscriptions.get(userId) ?? 0) >= this.limits.maxSubscriptionsPerUser) return 'user';
    if (this.total >= this.limits.maxSubscriptionsTotal) return 'total';
    add(this.subscriptions, userId, 1);
    this.total++;
    return once(() => {
      add(this.subscriptions, userId, -1);
      this.total--;
    });
  }
}

function add(m: Map<string, number>, key: string, by: number): void {
  const n = (m.get(key) ?? 0) + by;
  if (n > 0) m.set(key, n);
  else m.delete(key);
}

function once(f: () => void): Release {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    f();
  };
}
