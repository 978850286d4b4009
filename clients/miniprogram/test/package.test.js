'use strict'
// What `npm pack` ships and what installing it runs: the tarball holds the built runtime only
// (dist/*.js + dist/*.d.ts), the README and package.json; nothing runs on the consumer's machine.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const ROOT = path.resolve(__dirname, '..')
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))

const MODULES = ['adapters', 'client', 'errors', 'index', 'queue', 'random', 'storage', 'types']
const EXPECTED = [
  'README.md',
  ...MODULES.flatMap((m) => [`dist/${m}.d.ts`, `dist/${m}.js`]),
  'package.json',
].sort()

/** `npm pack --dry-run --json`, scripts off: pretest built dist/ already, and a prepack rebuild
 * would delete dist/ under the other test files running in parallel. */
function packedFiles() {
  const args = ['pack', '--dry-run', '--json', '--ignore-scripts']
  // Under `npm test`, run the same npm that runs us; else whatever `npm` is on PATH.
  const npmCli = process.env.npm_execpath
  const out = npmCli && npmCli.endsWith('.js')
    ? execFileSync(process.execPath, [npmCli, ...args], { cwd: ROOT, encoding: 'utf8' })
    : execFileSync('npm', args, { cwd: ROOT, encoding: 'utf8' })
  const [report] = JSON.parse(out)
  return report.files.map((f) => f.path).sort()
}

test('the tarball is the runtime build, the README and package.json: no sources, tests or typecheck', () => {
  const files = packedFiles()
  assert.deepEqual(files, EXPECTED)
  // The entry points resolve inside it, for Node and bundlers (main, types) and for WeChat
  // DevTools' 构建 npm (copies the `miniprogram` directory, then requires its index.js).
  assert.ok(files.includes(pkg.main), pkg.main)
  assert.ok(files.includes(pkg.types), pkg.types)
  assert.ok(files.includes(`${pkg.miniprogram}/index.js`), pkg.miniprogram)
})

test('installing the package runs nothing: no install-time scripts, no dependencies', () => {
  const scripts = pkg.scripts || {}
  for (const name of ['preinstall', 'install', 'postinstall', 'prepare', 'prepublish']) {
    assert.equal(scripts[name], undefined, `package.json has a "${name}" script`)
  }
  assert.equal(pkg.dependencies, undefined)
  assert.equal(pkg.bundleDependencies || pkg.bundledDependencies, undefined)
  assert.ok(!fs.existsSync(path.join(ROOT, 'binding.gyp')), 'binding.gyp makes npm run node-gyp on install')
})

test('every link in the README points inside the package (it is read from the tarball)', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const files = new Set(EXPECTED)
  const targets = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1])
  for (const target of targets) {
    if (target.startsWith('#')) continue
    assert.ok(files.has(target.replace(/^\.\//, '').replace(/#.*$/, '')), `README links out of the package: ${target}`)
  }
})

test('the README documents every client option (ClientOptions in src/types.ts)', () => {
  const source = fs.readFileSync(path.join(ROOT, 'src', 'types.ts'), 'utf8')
  const body = source.match(/export interface ClientOptions \{([\s\S]*?)\n\}/)[1]
  const options = [...body.matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1])
  assert.ok(options.length >= 13, options.join(', '))
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const rows = readme.split('\n').filter((line) => line.startsWith('| `'))
  for (const option of options) {
    assert.ok(rows.some((row) => row.startsWith('| `' + option + '`')), `option ${option} is not in the README's options table`)
  }
})
