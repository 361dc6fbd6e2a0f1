// Package stress ramps the request rate against a model under simulated
// network profiles and finds where it stops keeping up: the knee.
//
// For each profile (lan, wan, mobile-3g: see sandbox.NetProfile) a relay
// of its own is put in front of the model, and steps of increasing offered
// rate run through it open-loop (internal/openloop): requests leave at
// their scheduled instants whatever earlier ones are doing, and each is
// timed from that instant, so queueing shows as latency, not as a lower
// rate. Every request and every step is a row (see RequestRow, StepRow).
//
// # Where capacity comes from
//
// A knee needs a capacity. Three are real and each is simulated honestly:
//
//   - The model's: a server serves a fixed number of requests at once
//     (sequence slots); the reference model's --slots N with --latency L
//     gives N/L requests per second, beyond which requests wait in line.
//   - The caller's: a production client has a bounded connection pool
//     (Options.Connections). A request holds its connection for the whole
//     exchange, network delay included, so C connections carry at most
//     C / latency requests a second (Little's law). With 4 connections and
//     a 10 ms model, lan (0.5 ms) carries about 380/s, wan (40 ms median)
//     about 75/s: the same model reaches its knee at a lower rate from far
//     away, and requests wait for a connection, then time out.
//   - The link's: each profile caps the bytes per second in each direction,
//     shared by every request in flight. A request of B bytes (a long
//     context; Options.Body) cannot go faster than bytes_per_second / B a
//     second however fast the model is: under wan (12.5 MB/s) a 256 KiB
//     request saturates the link at about 48/s, under lan at about 477/s.
//     (Tests keep bodies small: parsing tens of MB/s of JSON needs more CPU
//     than a shared build machine has.)
//
// A profile's per-request delay holds no model slot (it is spent before the
// request reaches the model), so without a bounded pool or a saturated link
// it only spends latency budget: the SLO leaves less room for queueing.
//
// # The knee, precisely
//
// A step holds when all three hold:
//
//	p99 ≤ slo_p99                                  (latency, all requests, timeouts at the timeout)
//	(timeouts + errors) / sent ≤ max_failure_rate  (default 0.01)
//	achieved_rps ≥ min_achieved_ratio · offered_rps (default 0.9)
//
// where the quantiles are nearest-rank (the ⌈q·n⌉-th smallest latency of
// the step's n requests; a timed-out request counts as exactly the
// timeout, a lower bound) and achieved_rps = (ok − 1) / max(span, (sent − 1)
// / offered_rps), span being the time from the first successful reply to the
// last one: the rate replies came back at, never above the offered rate.
//
// The knee of a profile is the highest offered rate whose step held while
// every lower step held too (steps in ascending rate; 0 when the first
// fails). When every step held, the knee is the highest rate tried and is
// censored: the model may carry more. Each step row carries the criteria
// and its verdict (held, reason), so a reader recomputes the knee from the
// Parquet rows alone.
//
// The expected load (expected_rps) is always one of the steps; the timeout
// and error rates and the p99 of that step are the profile's gate metrics
// besides the knee (see Metrics).
package stress
