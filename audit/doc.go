// Audit trail and attestation.
//
// # Audit log
//
// Every stage, decision and teardown of a release appends one Record,
// stored as its own object (S3 has no append):
//
//	releases/<id>/audit/log/000001.json, 000002.json, …
//
// Records are numbered from 1 by the workflow, so a retried append writes
// the same key with the same bytes. Record n carries prev_hash = hash of
// record n-1 ("" for record 1) and its own hash. A chain is closed by a
// record of kind "final"; a chain without one is reported as open, which
// is how a deleted tail shows.
//
// # Record hash (for auditors re-implementing it)
//
//  1. Parse the stored object as JSON. Reject invalid UTF-8 and duplicate
//     member names.
//  2. Remove the top-level member "hash". Keep every other member exactly
//     as stored (absent stays absent, "" stays "").
//  3. Serialize with the JSON Canonicalization Scheme, RFC 8785: members
//     sorted by UTF-16 code units of their names, recursively; no
//     whitespace; strings with only the escapes \" \\ \b \f \n \r \t and
//     \u00xx (lowercase) for other control characters; numbers as
//     IEEE-754 doubles printed as ECMAScript does (integers up to 2^53 are
//     printed as plain integers).
//  4. hash = lowercase hex of SHA-256 over those bytes.
//
// Any RFC 8785 library reproduces step 3, e.g. in Python:
//
//	rec = json.load(f); h = rec.pop("hash")
//	assert hashlib.sha256(jcs.canonicalize(rec)).hexdigest() == h
//
// The stored object is itself the canonical encoding of the whole record
// (hash included) followed by a newline.
//
// Inputs and outputs list every object a stage read or wrote with its
// sha256; Verify downloads each again and compares.
//
// # Attestation
//
// releases/<id>/audit/attestation.json is a DSSE envelope (payloadType
// application/vnd.in-toto+json, ed25519 signature over the DSSE PAE) of an
// in-toto Statement v1 whose predicate (type
// https://sandgate.dev/release-evaluation/v1) is an Evaluation: verdict,
// gate rules, human decisions, the audit chain head and the config sha256.
// Keys are PEM: PKCS#8 "PRIVATE KEY" and PKIX "PUBLIC KEY", as openssl
// writes them.
package audit
