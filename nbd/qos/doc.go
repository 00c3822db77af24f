// Package qos limits the I/O of one block device export: operations per
// second and bytes per second, in total and for reads and writes
// separately, each with an optional burst. It knows plain numbers only;
// where they come from (librbd's rbd_qos_* options, StorageClass
// parameters) is the caller's business.
//
// # Semantics
//
// The model is librbd's (TokenBucketThrottle behind QosImageDispatch), so
// that one setting means the same to every client of an image:
//
//   - An operation costs one token of each IOPS bucket that applies to it
//     and its length in bytes of each BPS bucket; a zero-length operation
//     costs nothing in bytes. Reads are charged to the total and the read
//     buckets, writes, discards and write-zeroes to the total and the write
//     buckets. Flushes are never limited. Operations may be excluded by
//     kind ([Limits.Exclude], librbd's rbd_qos_exclude_ops).
//   - Each limit is a pair of buckets refilled continuously. The
//     "available" bucket holds at most Burst tokens (Rate without a burst)
//     and refills at Burst per second; the "remaining" bucket holds
//     Burst×BurstSeconds and refills at Rate per second, and available
//     never exceeds remaining. So an idle export may run at Burst per
//     second for about BurstSeconds, and at Rate on average.
//   - A request larger than the bucket is not refused or split: it is
//     charged in full and waits until the bucket has paid its debt.
//   - Requests are served in arrival order: each one is charged when it
//     arrives (possibly into debt) and waits until the debt before it and
//     its own are paid. Waiting requests are released on a tick
//     (max(1 s / Rate, TickMin), librbd's rbd_qos_schedule_tick_min), on a
//     grid shared by every limiter of the process, so wake-ups of many
//     throttled exports coincide.
//   - A limit newly turned on starts with an empty available bucket (no
//     initial burst), as librbd's does. Changing limits ([Limiter.Set])
//     forgives the debt of the requests already waiting: they are charged
//     again under the new limits, at once. Removing every limit releases
//     them immediately.
//
// # Cost
//
// A nil *Limiter and a Limiter with no limit set cost one atomic load per
// request. A limited request takes one mutex and, if it must wait, sleeps
// on a runtime timer in the goroutine that serves it: no goroutine or OS
// thread is started per limiter or per waiting request.
//
// # Concurrency
//
// Limiter methods are safe for concurrent use. Limiter.mu guards the
// buckets and the wake channel; the configuration is published through an
// atomic pointer, read without the lock on the fast path.
package qos
