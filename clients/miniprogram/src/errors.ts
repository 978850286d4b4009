/** Every failure the client reports, as one typed error. */

export type ErrorCode =
  /** wx.request `fail`: no connection, DNS, TLS, domain not whitelisted, aborted. */
  | 'network'
  /** The request or wx.login took longer than `timeout`. */
  | 'timeout'
  /**
   * wx.request failed `interrupted` (app in the background), so the request may have reached the
   * server: a write without an `Idempotency-Key` header is never sent again; a read (or a keyed
   * write) is retried, and this is what is left when the retries ran out.
   */
  | 'interrupted'
  /** wx.login failed (no code). */
  | 'wx_login_failed'
  /** The server refused the WeChat code (`error.code` says why: wechat_code_invalid, ...). */
  | 'login_failed'
  /** The server answered a call made by a helper (bind, bindPhone, ...) with an error. */
  | 'http'
  /** Storage threw; the client continues in memory. */
  | 'storage'
  /** `request()` after the session ended and re-login was not possible. */
  | 'not_authenticated'

export class HuihuaError extends Error {
  readonly code: ErrorCode
  /** HTTP status, when the server answered. */
  readonly statusCode?: number
  /** The server's `error.code`, when it gave one. */
  readonly serverCode?: string
  /** wx's `errMsg`, when wx failed. */
  readonly errMsg?: string
  readonly url?: string
  readonly data?: unknown
  readonly cause?: unknown

  constructor(
    code: ErrorCode,
    message: string,
    extra: {
      statusCode?: number
      serverCode?: string
      errMsg?: string
      url?: string
      data?: unknown
      cause?: unknown
    } = {},
  ) {
    super(message)
    // ES2015 target + subclassing Error: keep instanceof working.
    Object.setPrototypeOf(this, HuihuaError.prototype)
    this.name = 'HuihuaError'
    this.code = code
    this.statusCode = extra.statusCode
    this.serverCode = extra.serverCode
    this.errMsg = extra.errMsg
    this.url = extra.url
    this.data = extra.data
    this.cause = extra.cause
  }
}

/** `{"error": {"code": "...", "message": "..."}}` → the code, else undefined. */
export function serverErrorCode(data: unknown): string | undefined {
  let body: any = data
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body)
    } catch (_e) {
      return undefined
    }
  }
  const code = body && typeof body === 'object' && body.error && body.error.code
  return typeof code === 'string' && code ? code : undefined
}

export function serverErrorMessage(data: unknown): string | undefined {
  const body: any = data
  const message = body && typeof body === 'object' && body.error && body.error.message
  return typeof message === 'string' ? message : undefined
}
