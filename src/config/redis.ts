import { z } from 'zod';

/**
 * The `redis` section: how services reach Redis. `url` wins; otherwise host/port/db with the password
 * read from the environment variable `password_env` names (never the password itself in YAML).
 */
export const redisSectionSchema = z
  .object({
    url: z
      .string()
      .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
      .optional(),
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(1).max(65535).default(6379),
    db: z.number().int().min(0).max(15).default(0),
    username: z.string().min(1).optional(),
    password_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
      .optional(),
    tls: z.boolean().default(false),
    /** Redis Cluster: `url` (or host/port) is one seed node; the client follows the slots. */
    cluster: z.boolean().default(false),
    /** More seed nodes of the cluster, `redis://host:port` each. */
    cluster_nodes: z
      .array(z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://'))
      .default([]),
    /** Replicas that must confirm each published batch (WAIT) before the feed counts it written. */
    wait_replicas: z.number().int().min(0).max(10).default(0),
    connect_timeout_s: z.number().positive().max(300).default(2),
    socket_timeout_s: z.number().positive().max(300).default(2),
  })
  .strict();

export type RedisSection = z.infer<typeof redisSectionSchema>;
