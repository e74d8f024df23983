// @ts-check
/** dependency-cruiser's configuration: the layer rules of scripts/layers.cjs over src/. */
const { layerRules } = require('./scripts/layers.cjs');

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: layerRules('src'),
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/api/public/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
