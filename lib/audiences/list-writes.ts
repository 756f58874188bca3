import pLimit from 'p-limit'
import { type ChangeOrder, isLater } from '../courier/audience.ts'
import { endpointClassOf } from '../courier/endpoint-class.ts'
import { takeTurn } from '../courier/paced-call.ts'
import type { Pacer } from '../courier/pacer.ts'
import type { CourierRequest } from '../courier/routing.ts'
import { userKey } from '../user-key.ts'
import { DELETED_PEOPLE } from './membership-ledger.ts'
import type { Deletion, ListPlan, Membership } from './records.ts'
import { heldBack, ledgerFailed, notStarted, type Run, retryAll, settle, settleWrite, threw } from './run.ts'

/**
 * The list sync's Courier writes, each settling the records it carries: a person's deletion, a
 * list's subscribes (one POST per chunk) and unsubscribes (one DELETE per member), each list's
 * under its lease in the membership ledger so that the later Segment event wins.
 */

/**
 * The longest an instance waits for a list another instance is writing: a holder keeps the lease
 * for one paced write (a Courier call of at most COURIER_TIMEOUT_MS) or one round of unsubscribes.
 * Waiting longer would hold up the batch's other lists behind it.
 */
const LEASE_WAIT_MS = 30_000

/** Records of a list another instance is writing come back once it is likely done. */
const LIST_BUSY_DELAY_SECONDS = 5

/**
 * The pacer a list-sync call waits for: none for one member's unsubscribe, which Courier does not
 * rate limit; else its endpoint class's (list subscribes: Courier's published 20 a minute).
 * https://www.courier.com/docs/reference/rate-limits
 */
const pacerOf = (run: Run, request: CourierRequest): Pacer | undefined =>
  request.method === 'DELETE' && endpointClassOf(request.path) === 'lists'
    ? undefined
    : run.deps.pacerFor(endpointClassOf(request.path))

const turnOptions = (run: Run) => ({ deadline: run.deadline, timeoutMs: run.deps.config.courier.timeoutMs })

/** DELETE /lists/{id}/subscriptions/{member} for each, a few at a time; resolves those Courier took. */
const unsubscribeEach = async (run: Run, listPath: string, members: readonly Membership[]) => {
  const done: Membership[] = []
  await pLimit(Math.max(1, run.deps.config.delivery.concurrency)).map(members, async (m) => {
    try {
      if (heldBack(run, [m])) return
      const request: CourierRequest = {
        method: 'DELETE',
        path: `${listPath}/${m.segment as string}`,
        deletion: true,
      }
      const pacer = pacerOf(run, request)
      const turn = await takeTurn(run.deps.courier, pacer, turnOptions(run))
      if (typeof turn === 'string') return notStarted(run, [m])
      if (settleWrite(run, [m], request, await turn.send(request), pacer)) done.push(m)
    } catch (error) {
      threw(run, [m], error)
    }
  })
  return done
}

/** Whether a deletion of this member, later than the change, is in the ledger. */
const deletedAfter = (deleted: ReadonlyMap<string, ChangeOrder>, m: Membership) => {
  const deletion = deleted.get(m.change.recipientId)
  return deletion !== undefined && !isLater(m.change, deletion)
}

/**
 * Holding the list's lease: drops the members a later event already set (the ledger's times) or
 * a later deletion removed, lets `apply` write the others to Courier, and records those Courier
 * took. A deletion that lands while a subscribe is in flight is seen after it (the deletion is
 * marked before its own DELETE, the subscribe checked after its POST), and the subscription is
 * removed again; so is that of an older enter met on a retry, in case an earlier attempt wrote
 * it. Records of a list another instance holds too long, or of a ledger that cannot be reached,
 * come back.
 */
const underLease = async (
  run: Run,
  listId: string,
  listPath: string,
  group: readonly Membership[],
  apply: (fresh: readonly Membership[]) => Promise<readonly Membership[]>,
) => {
  const { ledger, logger } = run.deps
  try {
    const leased = await ledger.withList(
      listId,
      { waitUntil: Math.min(run.deadline, Date.now() + LEASE_WAIT_MS), holdUntil: run.invocationEnd },
      async () => {
        const members = group.map((m) => m.change.recipientId)
        const [applied, deleted] = await Promise.all([
          ledger.lastApplied(listId, members),
          ledger.lastApplied(DELETED_PEOPLE, members),
        ])
        const fresh: Membership[] = []
        const stale: Membership[] = []
        const undo: Membership[] = []
        for (const membership of group) {
          const last = applied.get(membership.change.recipientId)
          if (deletedAfter(deleted, membership)) {
            ;(membership.change.subscribed ? undo : stale).push(membership)
          } else if (last !== undefined && !isLater(membership.change, last)) {
            // The same change again (a retry) is applied again: only a later one supersedes it.
            stale.push(membership)
          } else fresh.push(membership)
        }
        // A later event for this member of this list was already written: this one lost.
        settle(run, stale, { action: 'delete' })
        const done = fresh.length === 0 ? [] : await apply(fresh)
        if (done.some((m) => m.change.subscribed)) {
          const deletedNow = await ledger.lastApplied(
            DELETED_PEOPLE,
            done.map((m) => m.change.recipientId),
          )
          undo.push(...done.filter((m) => deletedAfter(deletedNow, m)))
        }
        await ledger.recordApplied(
          listId,
          done.map(({ change }) => ({
            member: change.recipientId,
            at: change.at,
            subscribed: change.subscribed,
            messageId: change.messageId,
          })),
          run.recordBy,
        )
        const removable = undo.filter((m) => m.segment !== undefined)
        if (removable.length > 0) {
          logger.info('removing subscriptions of people deleted after the change', {
            listId,
            members: removable.length,
          })
          await unsubscribeEach(run, listPath, removable)
        }
      },
    )
    if (!leased.acquired) {
      retryAll(
        run,
        group,
        LIST_BUSY_DELAY_SECONDS,
        'list busy: another instance of the list sync was writing it',
      )
    }
  } catch (error) {
    // Courier may have taken the write: it is repeated on the retry, which is harmless.
    ledgerFailed(run, group, error, listId)
  }
}

/**
 * A deleted person: marked in the ledger first, then every list subscription removed
 * (`DELETE /profiles/{id}/lists`, as deliver did already; a repeat is harmless, 404 is done).
 * Marking first means a subscribe of an older change that reaches Courier after this DELETE is
 * seen by its own check and removed (underLease).
 */
export const forget = async (run: Run, { deletion, records, segment }: Deletion): Promise<void> => {
  const group = [{ records }]
  if (segment === undefined) {
    // Deliver dead-letters such a deletion with its reason; there is nothing to mark by path.
    settle(run, group, { action: 'delete' })
    return
  }
  if (heldBack(run, group)) return
  try {
    await run.deps.ledger.recordApplied(
      DELETED_PEOPLE,
      [{ member: deletion.recipientId, at: deletion.at, subscribed: false, messageId: deletion.messageId }],
      run.recordBy,
    )
  } catch (error) {
    ledgerFailed(run, group, error, DELETED_PEOPLE)
    return
  }
  const request: CourierRequest = { method: 'DELETE', path: `/profiles/${segment}/lists`, deletion: true }
  const pacer = pacerOf(run, request)
  const turn = await takeTurn(run.deps.courier, pacer, turnOptions(run))
  if (typeof turn === 'string') return notStarted(run, group)
  settleWrite(run, group, request, await turn.send(request), pacer)
}

/** A list's writes: its subscribes in chunks, then its unsubscribes, each under the list's lease. */
export const writeList = async (
  run: Run,
  listId: string,
  list: ListPlan,
  chunks: Iterable<Membership[]>,
): Promise<void> => {
  for (const chunk of chunks) {
    if (heldBack(run, chunk)) continue
    try {
      // POST adds without touching other subscriptions and creates a missing list.
      // https://www.courier.com/docs/reference/lists/post-subscribe
      const request = (fresh: readonly Membership[]): CourierRequest => ({
        method: 'POST',
        path: list.path,
        body: { recipients: fresh.map((m) => ({ recipientId: m.change.recipientId })) },
      })
      const pacer = pacerOf(run, request([]))
      // The turn is taken before the lease: a holder keeps the list for one write, not for a wait.
      const turn = await takeTurn(run.deps.courier, pacer, turnOptions(run))
      if (typeof turn === 'string') {
        notStarted(run, chunk)
        continue
      }
      await underLease(run, listId, list.path, chunk, async (fresh) => {
        const post = request(fresh)
        return settleWrite(run, fresh, post, await turn.send(post), pacer) ? fresh : []
      })
    } catch (error) {
      threw(run, chunk, error)
    }
  }
  const unsubscribe: Membership[] = []
  for (const m of list.unsubscribe) {
    if (m.segment !== undefined) unsubscribe.push(m)
    else {
      // '.' or '..' would resolve away (DELETE /lists/{id}/subscriptions/.. is DELETE /lists/{id}).
      const reason = `member ${userKey(m.change.recipientId)} cannot be a path segment: not unsubscribed`
      settle(run, [m], { action: 'dead-letter', reason, status: 0 })
    }
  }
  if (unsubscribe.length === 0 || heldBack(run, unsubscribe)) return
  if (Date.now() >= run.deadline) return notStarted(run, unsubscribe)
  // Unsubscribes are one call each and not rate limited: a few at a time, under one lease.
  await underLease(run, listId, list.path, unsubscribe, (fresh) => unsubscribeEach(run, list.path, fresh))
}
