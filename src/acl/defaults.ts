/**
 * The catalog of names the ACL rules are built from, taken from the code that uses them: the command
 * services of the registry, the runner's consumer group and the backtest queue (BullMQ's default
 * prefix `bull`, which marketbus does not change).
 */
import { BACKTEST_QUEUE } from '../contracts/catalog.js';
import { backtestingService, strategyService } from '../commands/services.js';
import { RUNNER_GROUP } from '../contracts/catalog.js';
import type { AclCatalog } from './rules.js';

export const DEFAULT_ACL_CATALOG: AclCatalog = {
  runnerService: strategyService.name,
  backtestService: backtestingService.name,
  runnerGroup: RUNNER_GROUP,
  backtestQueue: BACKTEST_QUEUE,
  bullPrefix: 'bull',
};
