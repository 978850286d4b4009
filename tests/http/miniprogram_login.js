'use strict'
// The mini-program SDK (clients/miniprogram/dist) logging in through nginx over HTTPS, for
// tests/http/test_topology.py. The fake wx does real HTTPS trusting the test's certificate (CA_FILE),
// and its wx.login asks the emulator (EMULATOR_URL) for a code, as a phone asks WeChat.
// Prints one JSON line: what the test asserts on.
const fs = require('node:fs')
const path = require('node:path')

const SDK = path.resolve(__dirname, '..', '..', 'clients', 'miniprogram')
const { createClient } = require(SDK)
const { createFakeWx } = require(path.join(SDK, 'test', 'helpers', 'fake-wx'))

async function main() {
  const wx = createFakeWx({ emulatorURL: process.env.EMULATOR_URL, ca: fs.readFileSync(process.env.CA_FILE) })
  const client = createClient({ baseURL: process.env.BASE_URL, wx })
  const login = await client.login()
  // a client that writes its own X-Forwarded-For: nginx appends the real peer after it
  const spoofed = { 'X-Forwarded-For': '6.6.6.6' }
  const me = await client.request({ url: '/v1/auth/me', header: spoofed })
  const sessions = await client.request({ url: '/v1/sessions', header: spoofed })
  const data = await client.request({ url: '/v1/session/data', method: 'PATCH', data: { set: { from: 'node' } } })
  const again = await client.request({ url: '/v1/session/data' })
  process.stdout.write(
    JSON.stringify({
      login: { user: login.user, session: login.session, bound: login.bound },
      me: { status: me.statusCode, data: me.data },
      sessions: { status: sessions.statusCode, data: sessions.data },
      put: data.statusCode,
      data: again.data,
      tokenStored: Boolean(client.token()),
      urls: wx.stats.requests.map((r) => r.url),
    }) + '\n',
  )
}

main().catch((e) => {
  process.stderr.write(`mini-program login failed: ${e && e.stack ? e.stack : e}\n`)
  process.exit(1)
})
