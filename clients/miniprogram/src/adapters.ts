/**
 * Taro and uni-app expose the same API as `wx` under `Taro.*` and `uni.*`, with small
 * differences: `request`/`login` may (also) return a Promise, uni-app 2's Promises resolve to
 * `[err, res]`, H5 builds name the response header `headers`, and some methods are missing outside
 * WeChat. These adapters map them to the `WxLike` interface the client uses.
 */
import { WxFail, WxLike, WxLoginOption, WxRandomValuesOption, WxRequestOption, WxRequestSuccess } from './types'

type AnyApi = { [name: string]: any }

function once<A>(fn: ((a: A) => void) | undefined, state: { done: boolean }): (a: A) => void {
  return (a: A) => {
    if (state.done) return
    state.done = true
    if (fn) fn(a)
  }
}

/** Call `api[name]` with callbacks, and also honour a returned Promise; first answer wins. */
function callBoth(
  api: AnyApi,
  name: string,
  option: { success?: (r: any) => void; fail?: (e: WxFail) => void; [k: string]: any },
  normalize: (r: any) => any,
): any {
  const state = { done: false }
  const success = once(option.success, state)
  const fail = once(option.fail, state)
  const onResult = (r: any) => {
    // uni-app 2: the Promise form resolves to [err, res].
    if (Array.isArray(r) && r.length === 2 && (r[0] || r[1])) {
      if (r[0]) fail(toFail(r[0], name))
      else success(normalize(r[1]))
      return
    }
    success(normalize(r))
  }
  const ret = api[name]({
    ...option,
    success: (r: any) => onResult(r),
    fail: (e: any) => fail(toFail(e, name)),
  })
  if (ret && typeof ret.then === 'function') {
    ret.then(
      (r: any) => {
        if (r !== undefined) onResult(r)
      },
      (e: any) => fail(toFail(e, name)),
    )
  }
  return ret
}

function toFail(e: any, name: string): WxFail {
  if (e && typeof e.errMsg === 'string') return { errMsg: e.errMsg, errno: e.errno }
  if (e && typeof e.message === 'string') return { errMsg: `${name}:fail ${e.message}` }
  return { errMsg: `${name}:fail ${String(e)}` }
}

function normalizeResponse(r: any): WxRequestSuccess {
  return {
    statusCode: r && (r.statusCode != null ? r.statusCode : r.status),
    data: r && r.data,
    header: (r && (r.header || r.headers)) || {},
    cookies: r && r.cookies,
  }
}

/** adapted object -> the platform object it wraps */
const sources: WeakMap<object, object> = new WeakMap()

/**
 * The object that stands for one mini-program runtime: the platform an adapter wraps, else `wx`
 * itself. Clients on the same runtime share one request cap (WeChat's 10) and one login flight,
 * however many adapted objects were made for it.
 */
export function runtimeOf(wx: WxLike): object {
  return sources.get(wx) || wx
}

/** Adapt an object with wx-style methods (Taro, uni, or another `wx` clone). */
export function fromPlatform(api: AnyApi, label = 'platform'): WxLike {
  if (!api || typeof api.request !== 'function' || typeof api.login !== 'function') {
    throw new Error(`huihua: ${label} has no request/login`)
  }
  const bind = (name: string) => (typeof api[name] === 'function' ? api[name].bind(api) : undefined)
  const adapted: WxLike = {
    request: (option: WxRequestOption) => callBoth(api, 'request', option as any, normalizeResponse),
    login: (option: WxLoginOption) => callBoth(api, 'login', option as any, (r) => r),
    getStorageSync: (key: string) => api.getStorageSync(key),
    setStorageSync: (key: string, data: any) => api.setStorageSync(key, data),
    removeStorageSync: (key: string) => api.removeStorageSync(key),
  }
  const info = bind('getAccountInfoSync')
  if (info) adapted.getAccountInfoSync = info
  const show = bind('onAppShow')
  if (show) adapted.onAppShow = show
  const hide = bind('onAppHide')
  if (hide) adapted.onAppHide = hide
  if (typeof api.getRandomValues === 'function') {
    adapted.getRandomValues = (option: WxRandomValuesOption) => callBoth(api, 'getRandomValues', option as any, (r) => r)
  }
  sources.set(adapted, api)
  return adapted
}

const adaptedCache: WeakMap<object, WxLike> = new WeakMap()

function cached(api: AnyApi, label: string): WxLike {
  // One adapted object per platform object, so clients share the request cap and login state.
  let a = adaptedCache.get(api)
  if (!a) {
    a = fromPlatform(api, label)
    adaptedCache.set(api, a)
  }
  return a
}

/** `createClient({ baseURL, adapter: taro(Taro) })` (import Taro from '@tarojs/taro'). */
export function taro(Taro: AnyApi): WxLike {
  return cached(Taro, 'Taro')
}

/** `createClient({ baseURL, adapter: uni(uni) })` (uni is a global in uni-app). */
export function uni(uniApi: AnyApi): WxLike {
  return cached(uniApi, 'uni')
}
