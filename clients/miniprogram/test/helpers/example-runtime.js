'use strict'
// Loads examples/miniprogram (app.js and its pages) in Node the way WeChat would: globals
// App / Page / getApp / wx, with config.js pointed at the test's servers.
const path = require('node:path')
const Module = require('node:module')

const EXAMPLE = path.resolve(__dirname, '..', '..', '..', '..', 'examples', 'miniprogram')
const SDK = path.resolve(__dirname, '..', '..')

function loadExample({ wx, baseURL, emulatorURL }) {
  const saved = { App: global.App, Page: global.Page, getApp: global.getApp, wx: global.wx }
  const originalResolve = Module._resolveFilename
  // `require('huihua-miniprogram')` from the example: this checkout's build, whether or not
  // `npm install` ran in the example (DevTools would use miniprogram_npm/).
  Module._resolveFilename = function (request, parent, ...rest) {
    if (request === 'huihua-miniprogram') return require.resolve(SDK)
    return originalResolve.call(this, request, parent, ...rest)
  }
  const configPath = path.join(EXAMPLE, 'config.js')
  require.cache[configPath] = {
    id: configPath,
    filename: configPath,
    loaded: true,
    exports: { env: 'develop', baseURL, emulatorURL },
  }
  let app = null
  const pages = {}
  global.wx = wx
  global.App = (def) => {
    app = def
  }
  global.getApp = () => app
  let current = null
  global.Page = (def) => {
    pages[current] = def
  }
  const fresh = (file) => {
    delete require.cache[file]
    return require(file)
  }
  try {
    fresh(path.join(EXAMPLE, 'app.js'))
    app.onLaunch()
    for (const name of ['index', 'counter', 'sessions', 'bind']) {
      current = name
      fresh(path.join(EXAMPLE, 'pages', name, name + '.js'))
    }
  } finally {
    Module._resolveFilename = originalResolve
  }
  /** A page instance: its definition with `data` and a `setData` that merges. */
  const open = (name) => {
    const def = pages[name]
    const page = Object.create(def)
    page.data = JSON.parse(JSON.stringify(def.data || {}))
    page.setData = (patch) => Object.assign(page.data, patch)
    return page
  }
  const restore = () => {
    for (const k of Object.keys(saved)) {
      if (saved[k] === undefined) delete global[k]
      else global[k] = saved[k]
    }
    delete require.cache[configPath]
  }
  return { app, open, restore }
}

module.exports = { loadExample, EXAMPLE }
