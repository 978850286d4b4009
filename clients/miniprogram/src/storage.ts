/**
 * wx storage that may throw (full, quota, corrupted, private mode in H5 builds of Taro/uni):
 * every failure falls back to an in-memory copy, and is reported once through `onError`.
 */
import { HuihuaError } from './errors'
import { StoredState, WxLike } from './types'

export class SafeStorage {
  private memory: StoredState | null = null
  private memoryValid = false
  private reported = false

  constructor(
    private readonly wx: WxLike,
    readonly key: string,
    private readonly report: (err: HuihuaError) => void,
  ) {}

  read(): StoredState | null {
    try {
      const raw = this.wx.getStorageSync(this.key)
      const state = parse(raw)
      if (state) return state
      // Nothing stored (or storage lost it): what we kept in memory, if anything.
      return this.memoryValid ? this.memory : null
    } catch (e) {
      this.fail('read', e)
      return this.memoryValid ? this.memory : null
    }
  }

  write(state: StoredState): void {
    this.memory = state
    this.memoryValid = true
    try {
      this.wx.setStorageSync(this.key, JSON.stringify(state))
    } catch (e) {
      this.fail('write', e)
    }
  }

  clear(): void {
    this.memory = null
    this.memoryValid = true
    try {
      this.wx.removeStorageSync(this.key)
    } catch (e) {
      this.fail('remove', e)
      // Could not remove: overwrite with an empty value so a restart does not resurrect it.
      try {
        this.wx.setStorageSync(this.key, '')
      } catch (_e) {
        /* in memory only */
      }
    }
  }

  private fail(op: string, e: unknown): void {
    if (this.reported) return
    this.reported = true
    this.report(
      new HuihuaError('storage', `storage ${op} failed for ${this.key}; keeping the session in memory`, {
        cause: e,
      }),
    )
  }
}

function parse(raw: unknown): StoredState | null {
  let value: any = raw
  if (typeof value === 'string') {
    if (!value) return null
    try {
      value = JSON.parse(value)
    } catch (_e) {
      return null
    }
  }
  if (value && typeof value === 'object' && typeof value.token === 'string' && value.token) {
    return value as StoredState
  }
  return null
}
