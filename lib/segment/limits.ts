/**
 * How much one request may ask of the relay, so a body costs a bounded amount of work whatever
 * it holds, authenticated or not. Anything beyond these is not something Segment sends.
 */

/**
 * Events in one request: Webhooks (Actions) batches default to 1,000 events and "there's a
 * maximum batch size limit of 4000"
 * (https://segment.com/docs/connections/destinations/catalog/actions-webhook/#batch-size-limits).
 * A body with more is refused whole with 413 naming this limit.
 */
export const MAX_EVENTS_PER_REQUEST = 4_000

/**
 * Nesting of objects and arrays in a body, counted from the body itself (a batch's array and an
 * Extensible Webhook's `{"json": …}` wrapper are two of them). Segment documents no nesting
 * limit; its events are a few levels deep (`context.personas`, `properties.products[].…`), so 64
 * leaves ample room while every recursive reader of the parsed body (JSON.stringify among them)
 * stays far from the stack limit. A deeper body is refused whole with 413 naming this limit.
 */
export const MAX_JSON_DEPTH = 64

/**
 * Entries of `rejected` an answer (and its log line) lists one by one; past them it gives how
 * many more there were. Lambda answers at most 6 MB
 * (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), and a reason is at
 * most MAX_REASON_LENGTH characters, so an answer stays under 200 KB.
 */
export const MAX_LISTED_REJECTIONS = 200

/** Characters of one rejection's reason (it may quote what the event held). */
export const MAX_REASON_LENGTH = 300
