/** A counting semaphore: at most `limit` wx.request calls in flight (WeChat's cap is 10). */
export class Limiter {
  private active = 0
  private readonly waiting: Array<() => void> = []

  constructor(public limit: number) {}

  /** Resolves with a release function once a slot is free. `urgent` jumps the queue (login). */
  acquire(urgent = false): Promise<() => void> {
    return new Promise<() => void>((resolve) => {
      const grant = () => {
        this.active++
        let released = false
        resolve(() => {
          if (released) return
          released = true
          this.active--
          this.next()
        })
      }
      if (this.active < this.limit && this.waiting.length === 0) grant()
      else if (urgent) this.waiting.unshift(grant)
      else this.waiting.push(grant)
    })
  }

  get inFlight(): number {
    return this.active
  }

  get queued(): number {
    return this.waiting.length
  }

  private next(): void {
    while (this.active < this.limit && this.waiting.length) {
      const grant = this.waiting.shift()!
      grant()
    }
  }
}
