/**
 * The huihua session client.
 *
 * - The token lives in storage under `huihua:<appId>:<env>:session` and in memory; it is sent as
 *   `Authorization: Bearer` (never in a query string), and only to URLs under `baseURL`.
 * - A 401 carrying a session error code (`session_expired`, `session_revoked`,
 *   `not_authenticated`) starts ONE login shared by every request that is waiting (single flight,
 *   shared by every client on the same runtime and storage key); each of them replays once.
 *   A 401 for a request sent with a token that has since been replaced just replays.
 * - wx.login is called only when there is no usable token or on such a 401, never per request,
 *   and never more than once per `loginInterval` (250 ms) per `wx`. Each code goes out with a
 *   random `Idempotency-Key` of its own (./random), reused only when that code is retried.
 * - A request whose answer was lost (`interrupted`) is sent again only when that is safe: a read,
 *   or a request with an `Idempotency-Key`. Other writes reject, so nothing is done twice.
 * - At most `maxConcurrent` (clamped to WeChat's 10) wx.request calls are in flight per runtime
 *   (`wx`, or the platform object adapters wrap); the rest queue. A slot is freed when wx is done
 *   with the request, not when we stop waiting.
 * - No keep-alive timers: the server's sliding expiry is renewed by the requests themselves, and
 *   a rotated token coming back in `X-Session-Token` is stored.
 */
import { HuihuaError, serverErrorCode, serverErrorMessage } from './errors'
import { Limiter } from './queue'
import { randomKey } from './random'
import { SafeStorage } from './storage'
import {
  ClientOptions,
  ClientPaths,
  Hooks,
  LoginResult,
  Method,
  RequestOptions,
  WxMethod,
  Response,
  SessionInfo,
  StoredState,
  User,
  WxFail,
  WxLike,
  WxRequestSuccess,
} from './types'
import { runtimeOf, taro as taroAdapter, uni as uniAdapter } from './adapters'

declare const Taro: any
declare const uni: any

const DEFAULT_TIMEOUT = 15000
const MAX_CONCURRENT = 10
const DEFAULT_LOGIN_INTERVAL = 250
const DEFAULT_RELOGIN_CODES = ['not_authenticated', 'session_expired', 'session_revoked']
const DEFAULT_PATHS: ClientPaths = {
  login: '/v1/auth/wechat',
  me: '/v1/auth/me',
  logout: '/v1/auth/logout',
  bind: '/v1/auth/wechat/bind',
  phone: '/v1/auth/wechat/phone',
}

/** `paths` over the defaults; `loginPath` is the older name of `paths.login`. Empty values are ignored. */
function resolvePaths(options: ClientOptions): ClientPaths {
  const paths: ClientPaths = { ...DEFAULT_PATHS }
  if (options.loginPath) paths.login = options.loginPath
  const given = (options.paths || {}) as Partial<ClientPaths>
  for (const name of Object.keys(DEFAULT_PATHS) as (keyof ClientPaths)[]) {
    const value = given[name]
    if (typeof value === 'string' && value) paths[name] = value
  }
  return paths
}
const MAX_INTERRUPTED_RETRIES = 2
/** wx.request's own maximum timeout (ms): no request of WeChat's runs longer. */
const WX_MAX_TIMEOUT = 60000

/**
 * Per runtime (one per mini program: the `wx` object, or the platform an adapter wraps): the
 * request cap, app visibility, the wx.login clock.
 */
interface Platform {
  limiter: Limiter
  hidden: boolean
  canWaitForShow: boolean
  showWaiters: Array<() => void>
  lastLoginAt: number
  sessions: { [storageKey: string]: Shared }
}

/** Per `wx` and storage key: the cached state and the one login in flight. */
interface Shared {
  storage: SafeStorage
  state: StoredState | null
  loaded: boolean
  loginFlight: Promise<LoginResult> | null
}

const platforms: WeakMap<object, Platform> = new WeakMap()

function platformOf(wx: WxLike, maxConcurrent: number): Platform {
  let p = platforms.get(runtimeOf(wx))
  if (!p) {
    const platform: Platform = {
      limiter: new Limiter(maxConcurrent),
      hidden: false,
      canWaitForShow: typeof wx.onAppShow === 'function',
      showWaiters: [],
      lastLoginAt: 0,
      sessions: {},
    }
    if (typeof wx.onAppShow === 'function') {
      try {
        wx.onAppShow(() => {
          platform.hidden = false
          const waiters = platform.showWaiters.splice(0)
          waiters.forEach((w) => w())
        })
      } catch (_e) {
        platform.canWaitForShow = false
      }
    }
    if (typeof wx.onAppHide === 'function') {
      try {
        wx.onAppHide(() => {
          platform.hidden = true
        })
      } catch (_e) {
        /* visibility unknown: interrupted requests are retried at once */
      }
    }
    platforms.set(runtimeOf(wx), platform)
    p = platform
  } else {
    // Several clients on one wx share WeChat's one cap: the smallest wins.
    p.limiter.limit = Math.min(p.limiter.limit, maxConcurrent)
  }
  return p
}

/**
 * `maxConcurrent`, clamped to 1..10: WeChat runs at most 10 wx.request calls at once (more fail or
 * stall), so a larger value is lowered to 10. Anything that is not a positive number means 10
 * (NaN would otherwise make a queue that never starts).
 */
function concurrencyCap(asked: unknown): number {
  const n = typeof asked === 'number' ? asked : Number(asked)
  if (!(n > 0)) return MAX_CONCURRENT
  return Math.max(1, Math.min(MAX_CONCURRENT, Math.floor(n)))
}

function sleep(ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    setTimeout(resolve, ms)
  })
}

function headerValue(header: Record<string, any> | undefined, name: string): string | undefined {
  if (!header) return undefined
  const lower = name.toLowerCase()
  for (const k of Object.keys(header)) {
    if (k.toLowerCase() === lower) {
      const v = header[k]
      if (Array.isArray(v)) return v.length ? String(v[0]) : undefined
      return v == null ? undefined : String(v)
    }
  }
  return undefined
}

function expiryOf(session: SessionInfo | null | undefined): number | null {
  if (!session || !session.expires_at) return null
  const t = Date.parse(session.expires_at)
  return isNaN(t) ? null : t
}

function resolvePlatform(options: ClientOptions): WxLike {
  const a = options.adapter
  if (a && typeof a === 'object') return a
  if (a === 'taro') {
    if (typeof Taro === 'undefined') throw new Error('huihua: adapter "taro" but no global Taro; pass adapter: taro(Taro)')
    return taroAdapter(Taro)
  }
  if (a === 'uni') {
    if (typeof uni === 'undefined') throw new Error('huihua: adapter "uni" but no global uni; pass adapter: uni(uni)')
    return uniAdapter(uni)
  }
  if (options.wx) return options.wx
  if (typeof wx !== 'undefined') return wx as unknown as WxLike
  throw new Error('huihua: no wx object; pass { wx } (or an adapter) to createClient')
}

export interface SessionState {
  user: User
  session: SessionInfo
  bound?: boolean
}

export class HuihuaClient {
  readonly baseURL: string
  readonly storageKey: string
  private readonly wx: WxLike
  private readonly timeout: number
  private readonly hooks: Hooks
  private readonly loginInterval: number
  private readonly reloginCodes: string[]
  private readonly paths: ClientPaths
  private readonly methodOverride: boolean
  private readonly platform: Platform
  private readonly shared: Shared

  constructor(options: ClientOptions) {
    if (!options || !options.baseURL) throw new Error('huihua: createClient needs { baseURL }')
    this.baseURL = options.baseURL.replace(/\/+$/, '')
    this.wx = resolvePlatform(options)
    this.timeout = options.timeout && options.timeout > 0 ? options.timeout : DEFAULT_TIMEOUT
    this.hooks = options.hooks || {}
    this.loginInterval = options.loginInterval != null ? options.loginInterval : DEFAULT_LOGIN_INTERVAL
    this.reloginCodes = options.reloginCodes || DEFAULT_RELOGIN_CODES
    this.paths = resolvePaths(options)
    this.methodOverride = options.methodOverride !== false
    this.platform = platformOf(this.wx, concurrencyCap(options.maxConcurrent))
    this.storageKey = options.storageKey || this.defaultKey(options)
    let shared = this.platform.sessions[this.storageKey]
    if (!shared) {
      shared = {
        storage: new SafeStorage(this.wx, this.storageKey, (e) => this.emitError(e)),
        state: null,
        loaded: false,
        loginFlight: null,
      }
      this.platform.sessions[this.storageKey] = shared
    }
    this.shared = shared
  }

  // ---- public API -------------------------------------------------------------------------

  /** wx.login → POST /v1/auth/wechat; stores the token. Joins a login already in flight. */
  login(): Promise<LoginResult> {
    return this.startLogin()
  }

  /**
   * Like wx.request, as a Promise: resolves `{statusCode, data, header}` for every HTTP status,
   * rejects a `HuihuaError` for network failures and timeouts (and failed logins).
   */
  async request<T = any>(options: RequestOptions): Promise<Response<T>> {
    const url = this.resolve(options.url)
    const authed = options.auth !== false && this.isOwn(url)
    let replayed = false
    for (;;) {
      const token = authed ? await this.ensureToken() : null
      const res = await this.send(url, options, token, false)
      if (token) this.absorbToken(res, token)
      if (authed && !replayed && res.statusCode === 401) {
        const code = serverErrorCode(res.data)
        if (code && this.reloginCodes.indexOf(code) >= 0) {
          replayed = true
          await this.relogin(token, code, url)
          continue
        }
      }
      return res as Response<T>
    }
  }

  /**
   * The signed-in user and session: `GET /v1/auth/me` (re-logging in if the session died),
   * or, with `{cached: true}`, what storage holds (no network). `null` when not logged in.
   */
  async session(options: { cached?: boolean } = {}): Promise<SessionState | null> {
    if (options.cached) {
      const s = this.current()
      return s && s.user && s.session ? { user: s.user, session: s.session, bound: s.bound } : null
    }
    if (!this.usableToken() && !this.shared.loginFlight) return null
    const res = await this.request<{ user: User; session: SessionInfo }>({ url: this.paths.me })
    if (res.statusCode === 401) return null
    if (res.statusCode !== 200) throw this.httpError(res, this.paths.me)
    const s = this.current()
    if (s) this.save({ ...s, user: res.data.user, session: res.data.session, expiresAt: expiryOf(res.data.session) })
    return { user: res.data.user, session: res.data.session, bound: s ? s.bound : undefined }
  }

  /** POST /v1/auth/logout, then forget the token (also when the server cannot be reached). */
  async logout(): Promise<void> {
    if (this.shared.loginFlight) {
      try {
        await this.shared.loginFlight
      } catch (_e) {
        /* nothing to log out of */
      }
    }
    const s = this.current()
    if (!s) return
    try {
      const path = this.paths.logout
      const res = await this.send(this.resolve(path), { url: path, method: 'POST' }, s.token, false)
      if (res.statusCode >= 400 && res.statusCode !== 401) {
        this.emitError(this.httpError(res, path))
      }
    } catch (e) {
      // send() already reported it; the local session is dropped anyway.
    } finally {
      const now = this.current()
      if (now && now.token === s.token) this.forget()
    }
  }

  /** Link this WeChat user to a username/password account; the session token rotates. */
  async bind(username: string, password: string): Promise<SessionState> {
    const res = await this.request<{ user: User; session: SessionInfo; token?: string }>({
      url: this.paths.bind,
      method: 'POST',
      data: { username, password },
      header: { 'X-Session-Transport': 'header' },
    })
    if (res.statusCode !== 200) throw this.httpError(res, this.paths.bind)
    const token = res.data.token || headerValue(res.header, 'X-Session-Token') || (this.current() || ({} as any)).token
    this.save({
      token,
      user: res.data.user,
      session: res.data.session,
      bound: true,
      expiresAt: expiryOf(res.data.session),
    })
    return { user: res.data.user, session: res.data.session, bound: true }
  }

  /** Store the user's phone number from a `getPhoneNumber` button's `code`. */
  async bindPhone(code: string): Promise<{ user: User }> {
    const res = await this.request<{ user: User }>({ url: this.paths.phone, method: 'POST', data: { code } })
    if (res.statusCode !== 200) throw this.httpError(res, this.paths.phone)
    const s = this.current()
    if (s) this.save({ ...s, user: res.data.user })
    return { user: res.data.user }
  }

  /** The stored token, or null (for handing to a WebSocket or upload call yourself). */
  token(): string | null {
    const s = this.current()
    return s ? s.token : null
  }

  // ---- login ------------------------------------------------------------------------------

  private current(): StoredState | null {
    if (!this.shared.loaded) {
      this.shared.state = this.shared.storage.read()
      this.shared.loaded = true
    }
    return this.shared.state
  }

  private usableToken(): string | null {
    const s = this.current()
    // No local expiry check: the server's expiry slides with use, so only its 401 says "dead".
    return s ? s.token : null
  }

  private save(state: StoredState): void {
    state.savedAt = Date.now()
    this.shared.state = state
    this.shared.loaded = true
    this.shared.storage.write(state)
  }

  private forget(): void {
    this.shared.state = null
    this.shared.loaded = true
    this.shared.storage.clear()
  }

  /** A token to send: the stored one, or (none stored) a fresh login. */
  private async ensureToken(): Promise<string> {
    if (this.shared.loginFlight) await this.shared.loginFlight
    const token = this.usableToken()
    if (token) return token
    await this.startLogin()
    const fresh = this.usableToken()
    if (!fresh) throw new HuihuaError('not_authenticated', 'login gave no token')
    return fresh
  }

  /** A request sent with `usedToken` got a session 401. */
  private async relogin(usedToken: string | null, code: string, url: string): Promise<void> {
    if (this.shared.loginFlight) {
      await this.shared.loginFlight
      return
    }
    const now = this.current()
    if (now && now.token !== usedToken && this.usableToken()) return // someone already logged in again
    if (now && now.token === usedToken) this.forget()
    this.emit('onSessionExpired', { code, url })
    await this.startLogin()
  }

  private startLogin(): Promise<LoginResult> {
    if (this.shared.loginFlight) return this.shared.loginFlight
    const flight = this.doLogin()
    this.shared.loginFlight = flight
    const done = () => {
      if (this.shared.loginFlight === flight) this.shared.loginFlight = null
    }
    flight.then(done, done)
    return flight
  }

  private async doLogin(): Promise<LoginResult> {
    try {
      const wait = this.platform.lastLoginAt + this.loginInterval - Date.now()
      if (wait > 0) await sleep(wait)
      this.platform.lastLoginAt = Date.now()
      // One key per attempt (per code), kept in this closure only, never in storage: every retry
      // of this code below reuses `opts`, so the server can hand the outcome back to us, and
      // only to us (the same code with no key or another key gets 400 wechat_code_used).
      const [code, key] = await Promise.all([this.wxLogin(), randomKey(this.wx)])
      const url = this.resolve(this.paths.login)
      const opts: RequestOptions = {
        url,
        method: 'POST',
        data: { code },
        header: { 'X-Session-Transport': 'header', 'Idempotency-Key': key },
      }
      let res: WxRequestSuccess
      try {
        res = await this.send(url, opts, null, true, false)
      } catch (e) {
        // The code may or may not have reached the server; its exchange is idempotent for the
        // same code and key, so one more try with both is safe (a fresh code costs a wx.login).
        // (`interrupted` was already retried by send(): the key makes the request repeatable.)
        if (!(e instanceof HuihuaError) || (e.code !== 'network' && e.code !== 'timeout')) throw e
        res = await this.send(url, opts, null, true, false)
      }
      if (res.statusCode !== 200 || !res.data || typeof res.data !== 'object') {
        const serverCode = serverErrorCode(res.data)
        throw new HuihuaError(
          'login_failed',
          `WeChat login refused: ${res.statusCode} ${serverCode || ''} ${serverErrorMessage(res.data) || ''}`.trim(),
          { statusCode: res.statusCode, serverCode, url, data: res.data },
        )
      }
      const body = res.data
      const token = body.token || headerValue(res.header, 'X-Session-Token')
      if (!token) {
        throw new HuihuaError('login_failed', 'the login answer carried no token (is X-Session-Transport honoured?)', {
          statusCode: res.statusCode,
          url,
        })
      }
      const result: LoginResult = { user: body.user, session: body.session, bound: !!body.bound }
      this.save({ token, user: body.user, session: body.session, bound: !!body.bound, expiresAt: expiryOf(body.session) })
      this.emit('onLogin', result)
      return result
    } catch (e) {
      const err =
        e instanceof HuihuaError ? e : new HuihuaError('login_failed', 'login failed: ' + String(e), { cause: e })
      // Reported here, once per flight (send() was told not to), not once per waiting request.
      this.emitError(err)
      throw err
    }
  }

  private wxLogin(): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      let settled = false
      const timer = setTimeout(() => {
        if (settled) return
        settled = true
        reject(new HuihuaError('timeout', `wx.login took longer than ${this.timeout} ms`))
      }, this.timeout + 1000)
      const settle = (fn: () => void) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        fn()
      }
      try {
        this.wx.login({
          timeout: this.timeout,
          success: (res) =>
            settle(() =>
              res && res.code
                ? resolve(res.code)
                : reject(new HuihuaError('wx_login_failed', 'wx.login gave no code', { errMsg: res && res.errMsg })),
            ),
          fail: (err) =>
            settle(() =>
              reject(
                new HuihuaError('wx_login_failed', 'wx.login failed: ' + ((err && err.errMsg) || 'unknown'), {
                  errMsg: err && err.errMsg,
                }),
              ),
            ),
        })
      } catch (e) {
        settle(() => reject(new HuihuaError('wx_login_failed', 'wx.login threw: ' + String(e), { cause: e })))
      }
    })
  }

  // ---- transport --------------------------------------------------------------------------

  /**
   * One wx.request through the queue, with a timeout and the background-interruption retry.
   * `interrupted` means the request may well have reached the server (only its answer was lost),
   * so only a request that is safe to repeat is sent again: see `repeatable`.
   */
  private async send(
    url: string,
    options: RequestOptions,
    token: string | null,
    urgent: boolean,
    report = true,
  ): Promise<WxRequestSuccess> {
    let interruptions = 0
    for (;;) {
      const release = await this.platform.limiter.acquire(urgent)
      const outcome = await this.rawRequest(url, options, token, release)
      if (outcome.res) return outcome.res
      const err = outcome.err!
      if (err.code === 'interrupted') {
        if (!repeatable(options)) {
          const failed = notRepeated(err, options, url)
          if (report) this.emitError(failed)
          throw failed
        }
        if (interruptions < MAX_INTERRUPTED_RETRIES) {
          interruptions++
          if (this.platform.hidden && this.platform.canWaitForShow) await this.whenShown()
          continue
        }
      }
      if (report) this.emitError(err)
      throw err
    }
  }

  private whenShown(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.platform.showWaiters.push(resolve)
    })
  }

  /**
   * One wx.request. `release` frees its queue slot when wx is done with the request (it answered,
   * failed, or was aborted), not merely when we stop waiting: a platform without `abort()` keeps a
   * timed-out request running, and it still counts against WeChat's 10.
   */
  private rawRequest(
    url: string,
    options: RequestOptions,
    token: string | null,
    release: () => void,
  ): Promise<{ res?: WxRequestSuccess; err?: HuihuaError }> {
    const timeout = options.timeout && options.timeout > 0 ? options.timeout : this.timeout
    const asked: Method = (options.method || 'GET').toUpperCase() as Method
    const header: Record<string, string> = {}
    let method = asked as WxMethod
    if (asked === 'PATCH' && this.methodOverride) {
      method = 'POST'
      header['X-HTTP-Method-Override'] = 'PATCH'
    }
    if (options.header) {
      for (const k of Object.keys(options.header)) {
        // Never let a caller's header smuggle a second credential next to ours.
        if (token && k.toLowerCase() === 'authorization') continue
        header[k] = options.header[k]
      }
    }
    if (token) header['Authorization'] = 'Bearer ' + token
    return new Promise((resolve) => {
      let settled = false
      let task: any
      let finished = false
      let leak: ReturnType<typeof setTimeout> | undefined
      const finish = () => {
        if (finished) return
        finished = true
        if (leak !== undefined) clearTimeout(leak)
        release()
      }
      const settle = (value: { res?: WxRequestSuccess; err?: HuihuaError }) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resolve(value)
      }
      // Our own deadline, in case the platform ignores `timeout` (old base libraries, adapters).
      const timer = setTimeout(() => {
        if (settled) return
        // Settle first: abort() makes wx call `fail` ("request:fail abort") synchronously.
        settle({ err: new HuihuaError('timeout', `${asked} ${url} took longer than ${timeout} ms`, { url }) })
        let aborted = false
        try {
          if (task && typeof task.abort === 'function') {
            task.abort()
            aborted = true
          }
        } catch (_e) {
          /* already finished */
        }
        if (aborted) finish()
        // No way to stop it: the slot stays taken until wx reports back, or at the latest after
        // WeChat's own maximum timeout (a platform that never calls back must not shrink the cap).
        else leak = setTimeout(finish, WX_MAX_TIMEOUT)
      }, timeout + 500)
      try {
        task = this.wx.request({
          url,
          method,
          data: options.data,
          header,
          timeout,
          dataType: options.dataType || 'json',
          success: (res: WxRequestSuccess) => {
            finish()
            settle({ res: { statusCode: res.statusCode, data: res.data, header: res.header || {}, cookies: res.cookies } })
          },
          fail: (err: WxFail) => {
            finish()
            settle({ err: failure(err, asked, url) })
          },
        })
        if (task && typeof task.then === 'function') task.then(undefined, () => undefined)
      } catch (e) {
        finish()
        settle({ err: new HuihuaError('network', `wx.request threw: ${String(e)}`, { url, cause: e }) })
      }
    })
  }

  /** Store a token the server rotated, if the request carried the token we still hold. */
  private absorbToken(res: WxRequestSuccess, usedToken: string): void {
    const fresh = headerValue(res.header, 'X-Session-Token')
    if (!fresh || fresh === usedToken) return
    const s = this.current()
    if (!s || s.token !== usedToken) return
    this.save({ ...s, token: fresh })
  }

  // ---- helpers ----------------------------------------------------------------------------

  private resolve(url: string): string {
    if (/^https?:\/\//i.test(url)) return url
    return this.baseURL + (url.charAt(0) === '/' ? url : '/' + url)
  }

  private isOwn(url: string): boolean {
    return url === this.baseURL || url.indexOf(this.baseURL + '/') === 0 || url.indexOf(this.baseURL + '?') === 0
  }

  private defaultKey(options: ClientOptions): string {
    let appId = options.appId
    let env = options.env
    if ((!appId || !env) && typeof this.wx.getAccountInfoSync === 'function') {
      try {
        const info = this.wx.getAccountInfoSync()
        const mp = info && info.miniProgram
        if (mp) {
          appId = appId || mp.appId
          env = env || mp.envVersion
        }
      } catch (_e) {
        /* not available (H5, tests) */
      }
    }
    return `huihua:${appId || 'app'}:${env || 'default'}:session`
  }

  private httpError(res: WxRequestSuccess | Response, url: string): HuihuaError {
    const serverCode = serverErrorCode(res.data)
    return new HuihuaError(
      'http',
      `${url} answered ${res.statusCode}${serverCode ? ' ' + serverCode : ''}${
        serverErrorMessage(res.data) ? ': ' + serverErrorMessage(res.data) : ''
      }`,
      { statusCode: res.statusCode, serverCode, url: this.resolve(url), data: res.data },
    )
  }

  private emit<K extends 'onLogin' | 'onSessionExpired'>(name: K, arg: Parameters<NonNullable<Hooks[K]>>[0]): void {
    const hook = this.hooks[name] as ((a: any) => void) | undefined
    if (!hook) return
    try {
      hook(arg)
    } catch (_e) {
      /* a hook must not break the client */
    }
  }

  private emitError(err: HuihuaError): void {
    const hook = this.hooks.onError
    if (!hook) return
    try {
      hook(err)
    } catch (_e) {
      /* a hook must not break the client */
    }
  }
}

const SAFE_METHODS = ['GET', 'HEAD', 'OPTIONS']

/**
 * May this request be sent again when its answer was lost? Only a safe method (the method the
 * server sees: a PATCH sent as POST + X-HTTP-Method-Override is a PATCH), or a request the caller
 * gave an `Idempotency-Key`, which lets the server answer a repeat without doing it twice. A lost
 * answer to any other write must not double an order.
 */
function repeatable(options: RequestOptions): boolean {
  const method = (options.method || 'GET').toUpperCase()
  const override = headerValue(options.header, 'X-HTTP-Method-Override')
  if (SAFE_METHODS.indexOf(method) >= 0 && (!override || SAFE_METHODS.indexOf(override.toUpperCase()) >= 0)) {
    return true
  }
  const key = headerValue(options.header, 'Idempotency-Key')
  return !!key && key.trim() !== ''
}

function notRepeated(err: HuihuaError, options: RequestOptions, url: string): HuihuaError {
  const method = (options.method || 'GET').toUpperCase()
  return new HuihuaError(
    'interrupted',
    `${method} ${url} was interrupted and may have reached the server; it was not sent again ` +
      '(a write is repeated only with an Idempotency-Key header)',
    { errMsg: err.errMsg, url },
  )
}

function failure(err: WxFail | undefined, method: string, url: string): HuihuaError {
  const errMsg = (err && err.errMsg) || 'request:fail'
  const lower = errMsg.toLowerCase()
  const code = lower.indexOf('interrupted') >= 0 ? 'interrupted' : lower.indexOf('timeout') >= 0 ? 'timeout' : 'network'
  return new HuihuaError(code, `${method} ${url} failed: ${errMsg}`, { errMsg, url })
}

export function createClient(options: ClientOptions): HuihuaClient {
  return new HuihuaClient(options)
}
