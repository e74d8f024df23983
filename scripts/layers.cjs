// @ts-check
/**
 * The layers of src/, top to bottom (ARCHITECTURE.md draws them), as dependency-cruiser rules. A folder
 * imports only folders below it, so there can be no cycle between folders; `no-circular` also forbids
 * cycles between files. `.dependency-cruiser.cjs` (run by `npm run lint`) and test/unit/layers.test.ts
 * (on a fixture tree) use these rules.
 */
const LAYERS = [
  'cli',
  'bench',
  'app',
  'api',
  'acl',
  'backtest',
  'strategy',
  'commands',
  'history',
  'marketdata',
  'config',
  'sql',
  'contracts',
  'bus',
  'util',
];

/** @param {string} root the folder whose sub-folders are the layers, e.g. `src` */
function layerRules(root) {
  /** @type {import('dependency-cruiser').IForbiddenRuleType[]} */
  const rules = [];
  LAYERS.forEach((layer, i) => {
    const above = LAYERS.slice(0, i);
    if (above.length === 0) return;
    rules.push({
      name: `layer-${layer}`,
      comment: `${root}/${layer}/ sits below ${above.join(', ')}: it may import only ${LAYERS.slice(i + 1).join(', ') || 'nothing of src'}`,
      severity: 'error',
      from: { path: `^${root}/${layer}/` },
      to: { path: `^${root}/(${above.join('|')})/` },
    });
  });
  rules.push({
    name: 'no-circular',
    comment: 'no import cycle between files',
    severity: 'error',
    from: {},
    to: { circular: true },
  });
  rules.push({
    name: 'no-unknown-folder',
    comment: `every file of ${root}/ sits in one of the layer folders`,
    severity: 'error',
    from: { path: `^${root}/`, pathNot: `^${root}/(${LAYERS.join('|')})/` },
    to: {},
  });
  return rules;
}

module.exports = { LAYERS, layerRules };
