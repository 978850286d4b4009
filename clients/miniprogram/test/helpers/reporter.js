'use strict'
// `npm test`'s reporter (node --test --test-reporter=./test/helpers/reporter.js): a dot per
// passing test, then the details of each failure, then node's own summary as TAP prints it
// (`# tests N`, `# pass N`, `# fail N`, ...). Output a test writes is passed through.
// For every test by name: node --test --test-reporter=spec test/unit.test.js
const { inspect } = require('node:util')

const WIDTH = 80

function indent(text, prefix) {
  return String(text).replace(/^/gm, prefix)
}

function where(data) {
  if (!data.file) return ''
  const file = data.file.replace(process.cwd() + '/', '')
  return data.line ? ` (${file}:${data.line}:${data.column})` : ` (${file})`
}

function describeFailure(data) {
  const error = data.details && data.details.error
  // node wraps what the test threw in ERR_TEST_FAILURE; show what was thrown.
  const thrown = error && error.code === 'ERR_TEST_FAILURE' && error.cause !== undefined ? error.cause : error
  const text = thrown instanceof Error ? inspect(thrown, { depth: 4 }) : inspect(thrown)
  return `✖ ${data.name}${where(data)}\n${indent(text, '  ')}\n`
}

module.exports = async function* reporter(source) {
  const failures = []
  const summary = []
  let column = 0
  const mark = (c) => {
    column = column + 1 >= WIDTH ? 0 : column + 1
    return column === 0 ? c + '\n' : c
  }
  for await (const { type, data } of source) {
    switch (type) {
      case 'test:pass':
        if (data.details && data.details.type === 'suite') break
        yield mark(data.skip !== undefined || data.todo !== undefined ? 's' : '.')
        break
      case 'test:fail':
        // A suite whose tests failed adds nothing to its tests' own failures.
        if (data.details && data.details.error && data.details.error.failureType === 'subtestsFailed') break
        failures.push(data)
        yield mark('X')
        break
      case 'test:stdout':
      case 'test:stderr':
        if (column) {
          column = 0
          yield '\n'
        }
        yield data.message
        break
      case 'test:diagnostic':
        // node's closing summary comes as top-level diagnostics; a test's own (t.diagnostic)
        // belongs to its report.
        if (data.nesting === 0 && !data.file) summary.push(data.message)
        break
    }
  }
  if (column) yield '\n'
  if (failures.length) {
    yield `\n${failures.length} failed:\n\n`
    for (const data of failures) yield describeFailure(data) + '\n'
  }
  for (const line of summary) yield `# ${line}\n`
}
