'use strict'
// Starts a REAL `huihua emulator` and `huihua serve` (via `uv run` from the repo root) on free
// ports, waits until both answer, and stops them (their whole process groups) at the end.
const { spawn } = require('node:child_process')
const net = require('node:net')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const crypto = require('node:crypto')

const REPO = path.resolve(__dirname, '..', '..', '..', '..')
const APPID = 'wx1234567890abcdef'
const SECRET = 'huihua-emulator-secret'

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

function uv(args, env, label) {
  const child = spawn('uv', ['run', '--no-sync', ...args], {
    cwd: REPO,
    env: { ...process.env, UV_PYTHON_DOWNLOADS: 'never', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group: we can stop uv AND the python it started
  })
  let log = ''
  const keep = (d) => {
    log += d.toString()
    if (log.length > 20000) log = log.slice(-20000)
  }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  child.label = label
  child.log = () => log
  return child
}

async function waitFor(url, child, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs
  let lastErr
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`${child.label} exited with ${child.exitCode}:\n${child.log()}`)
    }
    try {
      const r = await fetch(url)
      if (r.status === 200) return
      lastErr = new Error(`${url} answered ${r.status}`)
    } catch (e) {
      lastErr = e
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${child.label} did not come up at ${url}: ${lastErr}\n${child.log()}`)
}

function stop(child) {
  return new Promise((resolve) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch (_e) {
        /* gone */
      }
    }, 3000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    try {
      process.kill(-child.pid, 'SIGTERM')
    } catch (_e) {
      clearTimeout(timer)
      resolve()
    }
  })
}

async function startServers() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'huihua-mp-'))
  const [emulatorPort, servicePort] = [await freePort(), await freePort()]
  const serviceKey = crypto.randomBytes(16).toString('hex')
  const emulator = uv(['huihua', 'emulator', '--host', '127.0.0.1', '--port', String(emulatorPort)], {}, 'huihua emulator')
  const emulatorURL = `http://127.0.0.1:${emulatorPort}`
  const service = uv(
    ['huihua', 'serve', '--host', '127.0.0.1', '--port', String(servicePort)],
    {
      HUIHUA_STORE: 'memory://',
      HUIHUA_DATABASE: `sqlite:///${tmp}/a.db`,
      HUIHUA_WECHAT_APPID: APPID,
      HUIHUA_WECHAT_SECRET: SECRET,
      HUIHUA_WECHAT_API_BASE: emulatorURL,
      HUIHUA_SERVICE_KEY: serviceKey,
    },
    'huihua serve',
  )
  const baseURL = `http://127.0.0.1:${servicePort}`
  const servers = {
    baseURL,
    emulatorURL,
    serviceKey,
    async stop() {
      await Promise.all([stop(service), stop(emulator)])
      fs.rmSync(tmp, { recursive: true, force: true })
    },
  }
  try {
    await Promise.all([waitFor(emulatorURL + '/_emulator/calls', emulator), waitFor(baseURL + '/healthz', service)])
  } catch (e) {
    await servers.stop()
    throw e
  }
  return servers
}

/** JSON helper for the test's own calls (admin, emulator control, raw checks). */
async function json(method, url, { body, headers } = {}) {
  const r = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...(headers || {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await r.text()
  let data = text
  try {
    data = text ? JSON.parse(text) : null
  } catch (_e) {
    /* not JSON */
  }
  return { status: r.status, data, headers: r.headers }
}

/**
 * A loopback HTTP proxy in front of `target` that records what the server was sent
 * ({method, path, headers (lower-case), body}), so a test sees the wire, not the SDK's intent.
 */
async function recordingProxy(target) {
  const http = require('node:http')
  const received = []
  const server = http.createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      let parsed = body.toString('utf8')
      try {
        parsed = parsed ? JSON.parse(parsed) : null
      } catch (_e) {
        /* not JSON */
      }
      received.push({ method: req.method, path: req.url, headers: { ...req.headers }, body: parsed })
      const up = http.request(target + req.url, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode, answer.rawHeaders)
        answer.pipe(res)
      })
      up.on('error', () => res.destroy())
      up.end(body)
    })
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    received,
    close: () => new Promise((r) => server.close(r)),
  }
}

async function code2SessionCalls(emulatorURL) {
  const { data } = await json('GET', emulatorURL + '/_emulator/calls')
  return data.calls.filter((c) => String(c.path).includes('/sns/jscode2session'))
}

/**
 * The Django tutorial (examples/django_tutorial, which mounts huihua's /v1 API) on `runserver`,
 * with WeChat on a real emulator: its own SQLite files in a temporary folder, migrated first.
 */
async function startDjango() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'huihua-django-'))
  const [emulatorPort, djangoPort] = [await freePort(), await freePort()]
  const emulatorURL = `http://127.0.0.1:${emulatorPort}`
  const env = {
    TUTORIAL_DB: path.join(tmp, 'tutorial.db'),
    HUIHUA_STORE: `sqlite:///${tmp}/huihua.db`,
    HUIHUA_WECHAT_APPID: APPID,
    HUIHUA_WECHAT_SECRET: SECRET,
    HUIHUA_WECHAT_API_BASE: emulatorURL,
    DJANGO_DEBUG: '0',
  }
  const manage = path.join('examples', 'django_tutorial', 'manage.py')
  const migrate = uv(['python', manage, 'migrate', '--noinput'], env, 'django migrate')
  const code = await new Promise((resolve) => migrate.on('exit', resolve))
  if (code !== 0) throw new Error(`django migrate exited with ${code}:\n${migrate.log()}`)
  const emulator = uv(['huihua', 'emulator', '--host', '127.0.0.1', '--port', String(emulatorPort)], {}, 'huihua emulator')
  const django = uv(['python', manage, 'runserver', '--noreload', `127.0.0.1:${djangoPort}`], env, 'django runserver')
  const servers = {
    baseURL: `http://127.0.0.1:${djangoPort}`,
    emulatorURL,
    async stop() {
      await Promise.all([stop(django), stop(emulator)])
      fs.rmSync(tmp, { recursive: true, force: true })
    },
  }
  try {
    await Promise.all([
      waitFor(emulatorURL + '/_emulator/calls', emulator),
      waitFor(servers.baseURL + '/v1/session/data', django),
    ])
  } catch (e) {
    await servers.stop()
    throw e
  }
  return servers
}

module.exports = { startServers, startDjango, freePort, json, code2SessionCalls, recordingProxy, APPID, REPO }
