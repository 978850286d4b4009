/**
 * The platform surface the client needs: a structural subset of `wx` (WeChat's global), which
 * Taro's and uni-app's globals also satisfy through the adapters in `./adapters`.
 * `WechatMiniprogram.Wx` is assignable to `WxLike` (checked by `npm run typecheck`, typecheck/wx.ts).
 */

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS'

/** The methods wx.request accepts: no PATCH ("request:fail method invalid"). */
export type WxMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD' | 'OPTIONS' | 'TRACE' | 'CONNECT'

export interface WxRequestOption {
  url: string
  method?: WxMethod
  data?: string | Record<string, any> | ArrayBuffer
  header?: Record<string, any>
  timeout?: number
  dataType?: string
  success?: (res: WxRequestSuccess) => void
  fail?: (err: WxFail) => void
}

export interface WxRequestSuccess {
  statusCode: number
  data: any
  header: Record<string, any>
  cookies?: string[]
}

export interface WxFail {
  errMsg: string
  errno?: number
}

export interface WxLoginOption {
  timeout?: number
  success?: (res: { code: string; errMsg?: string }) => void
  fail?: (err: WxFail) => void
}

export interface WxRandomValuesOption {
  /** Bytes wanted. */
  length: number
  success?: (res: { randomValues: ArrayBuffer; errMsg?: string }) => void
  fail?: (err: WxFail) => void
}

export interface WxAccountInfo {
  miniProgram: { appId: string; envVersion?: string }
}

/** What `request()` may return: a task with `abort()` (wx), or nothing. */
export interface WxRequestTaskLike {
  abort?: () => void
}

export interface WxLike {
  request(option: WxRequestOption): WxRequestTaskLike | void | unknown
  login(option: WxLoginOption): void | unknown
  getStorageSync(key: string): any
  setStorageSync(key: string, data: any): void
  removeStorageSync(key: string): void
  getAccountInfoSync?: () => WxAccountInfo
  onAppShow?: (listener: (...args: any[]) => void) => void
  onAppHide?: (listener: (...args: any[]) => void) => void
  /** WeChat's CSPRNG (base library 2.15.0+), for the login's idempotency key. */
  getRandomValues?: (option: WxRandomValuesOption) => unknown
}

export interface User {
  id: string
  username?: string | null
  [key: string]: any
}

export interface SessionInfo {
  id: string
  client?: string
  created_at?: string
  last_seen_at?: string
  idle_expires_at?: string
  /** The session's absolute deadline: no activity extends it. */
  absolute_expires_at?: string
  /** The earlier of the idle and absolute deadlines: when it ends if left alone. */
  expires_at?: string
  [key: string]: any
}

/** What the client keeps in storage (one JSON value under the namespaced key). */
export interface StoredState {
  token: string
  user?: User | null
  session?: SessionInfo | null
  bound?: boolean
  /** ms since epoch of the session's expiry as of the last answer (informational: it slides). */
  expiresAt?: number | null
  savedAt?: number
}

export interface LoginResult {
  user: User
  session: SessionInfo
  bound: boolean
}

export interface RequestOptions {
  /** Path under `baseURL` (`/v1/...`) or an absolute URL (the token is only sent under `baseURL`). */
  url: string
  method?: Method
  data?: string | Record<string, any> | ArrayBuffer
  header?: Record<string, string>
  /** ms; defaults to the client's `timeout`. */
  timeout?: number
  /** Send the session token and log in when there is none / it is rejected. Default true. */
  auth?: boolean
  dataType?: string
}

export interface Response<T = any> {
  statusCode: number
  data: T
  header: Record<string, any>
}

export interface SessionExpiredEvent {
  /** The server's error code: `session_expired`, `session_revoked`, `not_authenticated`. */
  code: string
  url: string
}

export interface Hooks {
  /** After every successful WeChat login (first login and each re-login). */
  onLogin?: (result: LoginResult) => void
  /** The server rejected the stored session (401 with an error code); a re-login follows. */
  onSessionExpired?: (event: SessionExpiredEvent) => void
  /** Network failures, timeouts, failed logins, storage failures. Never throws into the client. */
  onError?: (error: import('./errors').HuihuaError) => void
}

/** The routes the client calls itself (see `ClientOptions.paths`). */
export interface ClientPaths {
  login: string
  me: string
  logout: string
  bind: string
  phone: string
}

export interface ClientOptions {
  /** `https://api.example.com` (no trailing slash needed). */
  baseURL: string
  /** The platform object; defaults to the global `wx`. */
  wx?: WxLike
  /** `'taro'` / `'uni'` (use the global `Taro` / `uni`) or an adapted object (`taro(Taro)`). */
  adapter?: 'taro' | 'uni' | WxLike
  /** Storage key; default `huihua:<appId>:<env>:session`. */
  storageKey?: string
  /** Default: `wx.getAccountInfoSync().miniProgram.envVersion`, else `'default'`. */
  env?: string
  /** Default: `wx.getAccountInfoSync().miniProgram.appId`, else `'app'`. */
  appId?: string
  /** Per request and per wx.login, in ms. Default 15000 (WeChat's own maximum is 60000). */
  timeout?: number
  /** wx.request calls in flight at once (WeChat allows 10). Default 10; clamped to 1..10. */
  maxConcurrent?: number
  hooks?: Hooks
  /** Minimum ms between two wx.login calls (WeChat allows about 4/s). Default 250. */
  loginInterval?: number
  /** 401 error codes that mean "log in again". */
  reloginCodes?: string[]
  /** Login route; default `/v1/auth/wechat`. Same as `paths.login` (which wins when both are given). */
  loginPath?: string
  /**
   * The routes the client calls itself, each a path under `baseURL` or an absolute URL; merged
   * over the defaults (`/v1/auth/wechat`, `/v1/auth/me`, `/v1/auth/logout`,
   * `/v1/auth/wechat/bind`, `/v1/auth/wechat/phone`), for a server mounted elsewhere.
   */
  paths?: Partial<ClientPaths>
  /**
   * wx.request has no PATCH. When true (default), a PATCH is sent as POST with
   * `X-HTTP-Method-Override: PATCH`; set false on platforms that can send PATCH (H5 builds).
   */
  methodOverride?: boolean
}
