// Package privacy probes a model for leaks of its system prompt, secrets,
// planted canary records and personal data, and re-scans red-team replies
// for the same. Detection is redteam's detectors (kinds system_prompt,
// secret, canary, pii); calls go through redteam.Call/Ordered so both stages
// retry and order rows the same way.
//
// The Parquet schema of leak results is LeakRow (see its doc).
package privacy
