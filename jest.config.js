// @ts-check
/**
 * One jest project per workspace package. ts-jest transpiles only (isolated modules);
 * type checking is done by `tsc -b tsconfig.all.json` in the test command.
 */
const path = require('node:path');
const fs = require('node:fs');

const packagesDir = path.join(__dirname, 'packages');
/** @type {Record<string, string>} */
const moduleNameMapper = {};
for (const dir of fs.readdirSync(packagesDir)) {
  const pkgFile = path.join(packagesDir, dir, 'package.json');
  if (!fs.existsSync(pkgFile)) continue;
  const { name } = JSON.parse(fs.readFileSync(pkgFile, 'utf8'));
  // Tests run against sources, not build output.
  moduleNameMapper[`^${name.replace(/[/\\^$*+?.()|[\]{}]/g, '\\$&')}$`] = path.join(
    packagesDir,
    dir,
    'src',
    'index.ts',
  );
}

/** @param {string} dir */
function project(dir) {
  return {
    displayName: dir,
    rootDir: path.join(__dirname, dir),
    testEnvironment: 'node',
    testMatch: ['<rootDir>/test/**/*.test.ts'],
    moduleNameMapper,
    transform: {
      '^.+\\.ts$': ['ts-jest', { tsconfig: path.join(__dirname, 'tsconfig.jest.json') }],
      // ESM-only dependencies (jose, loaded by @x/storage-codec-server's JWT auth with require(),
      // which Node >= 20.19 runs natively): jest's module system is CommonJS, so transpile them
      // like our sources.
      '/node_modules/jose/dist/.+\\.js$': [
        'ts-jest',
        { tsconfig: { allowJs: true, module: 'commonjs', target: 'es2022', isolatedModules: true } },
      ],
    },
    transformIgnorePatterns: ['/node_modules/(?!\\.pnpm/jose@|jose/)'],
  };
}

const projects = fs
  .readdirSync(packagesDir)
  .filter((d) => fs.existsSync(path.join(packagesDir, d, 'test')))
  .map((d) => project(`packages/${d}`));
const examplesDir = path.join(__dirname, 'examples');
for (const d of fs.existsSync(examplesDir) ? fs.readdirSync(examplesDir) : []) {
  if (fs.existsSync(path.join(examplesDir, d, 'test'))) projects.push(project(`examples/${d}`));
}

/** @type {import('jest').Config} */
module.exports = {
  projects,
  testTimeout: 60_000,
};
