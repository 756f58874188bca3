/**
 * Per-user order as Courier saw it: for each user, the order of each event's first 2xx answer
 * against the order Segment sent them in. The measure of the per-user order guarantee (README.md,
 * "Per-user order"), shared by the ordering tests and the benchmark.
 */

export interface SentEvent {
  readonly messageId: string
  readonly userId?: unknown
  readonly anonymousId?: unknown
}

export interface CourierAnswer {
  readonly messageId?: string | undefined
  readonly status: number
}

/** Users (userId, else anonymousId) whose delivered events reached Courier in another order than sent. */
export const reorderedUsers = (sent: readonly SentEvent[], answers: readonly CourierAnswer[]): string[] => {
  const firstSuccess = new Map<string, number>()
  answers.forEach((answer, index) => {
    if (answer.messageId === undefined || answer.status < 200 || answer.status >= 300) return
    if (!firstSuccess.has(answer.messageId)) firstSuccess.set(answer.messageId, index)
  })
  const byUser = new Map<string, number[]>()
  for (const event of sent) {
    const at = firstSuccess.get(event.messageId)
    if (at === undefined) continue
    const user = String(event.userId ?? event.anonymousId)
    byUser.set(user, [...(byUser.get(user) ?? []), at])
  }
  return [...byUser.entries()]
    .filter(([, positions]) => positions.some((at, i) => i > 0 && at < (positions[i - 1] as number)))
    .map(([user]) => user)
}
