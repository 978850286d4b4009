/**
 * The random `Idempotency-Key` of a login attempt: 16 bytes (128 bits) as 32 lowercase hex
 * characters. A leaked wx.login code is worth nothing without it, so it must be unguessable.
 *
 * Where the bytes come from, first that works:
 * 1. `wx.getRandomValues` (base library 2.15.0+; Taro's or uni-app's, where there is one,
 *    through the adapters): WeChat's cryptographically secure generator.
 * 2. The global `crypto.getRandomValues` (Web Crypto: Node 18+, H5 builds, newer engines).
 * 3. Older base libraries have neither: `Math.random`. Both engines WeChat runs (V8,
 *    JavaScriptCore) seed it from the OS per app start. It is not a CSPRNG (its state could be
 *    worked out from many of its outputs, which an app does not send anywhere), but a party that
 *    holds a leaked code learns nothing about it, and that is the party the key keeps out.
 */
import { WxLike } from './types'

declare const crypto: any

export const KEY_BYTES = 16
/** wx.getRandomValues is asynchronous: a platform that never calls back must not stall login. */
const WX_RANDOM_TIMEOUT = 1000

export function randomKey(wx: WxLike): Promise<string> {
  return fromWx(wx).then((bytes) => hex(bytes || fromWebCrypto() || fromMathRandom()))
}

function fromWx(wx: WxLike): Promise<Uint8Array | null> {
  const getRandomValues = wx.getRandomValues
  if (typeof getRandomValues !== 'function') return Promise.resolve(null)
  return new Promise<Uint8Array | null>((resolve) => {
    let done = false
    const settle = (bytes: Uint8Array | null) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve(bytes)
    }
    const timer = setTimeout(() => settle(null), WX_RANDOM_TIMEOUT)
    try {
      getRandomValues.call(wx, {
        length: KEY_BYTES,
        success: (res) => settle(usable(res && res.randomValues)),
        fail: () => settle(null),
      })
    } catch (_e) {
      settle(null)
    }
  })
}

function fromWebCrypto(): Uint8Array | null {
  try {
    if (typeof crypto === 'undefined' || !crypto || typeof crypto.getRandomValues !== 'function') return null
    return usable(crypto.getRandomValues(new Uint8Array(KEY_BYTES)))
  } catch (_e) {
    return null
  }
}

function fromMathRandom(): Uint8Array {
  const bytes = new Uint8Array(KEY_BYTES)
  for (let i = 0; i < KEY_BYTES; i++) bytes[i] = Math.floor(Math.random() * 256)
  return bytes
}

/** KEY_BYTES bytes from an ArrayBuffer or typed array; null for too few, or all zeros (a stub). */
function usable(buf: unknown): Uint8Array | null {
  if (!buf) return null
  let bytes: Uint8Array
  try {
    bytes = new Uint8Array(buf as ArrayBuffer) // a copy; works for a buffer from another realm too
  } catch (_e) {
    return null
  }
  if (bytes.length < KEY_BYTES) return null
  bytes = bytes.subarray(0, KEY_BYTES)
  return bytes.some((b) => b !== 0) ? bytes : null
}

function hex(bytes: Uint8Array): string {
  let out = ''
  for (let i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16)
  return out
}
