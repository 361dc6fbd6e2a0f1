package activities

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/gate"
	"github.com/sandgate/sandgate/privacy"
	"github.com/sandgate/sandgate/redteam"
	"github.com/sandgate/sandgate/shadow"
)

// AuditInput is one record of the release's hash-chained audit log. Keys
// are the objects the stage wrote; manifests are expanded into every file
// they list, so the record pins the digest of each row file.
type AuditInput struct {
	Record audit.Record
	Keys   []string
}

// AuditRef is what the workflow keeps of an appended record.
type AuditRef struct {
	Seq  int64
	Hash string
}

// AppendAudit digests the stage's outputs and appends the record. The
// sequence number comes from the workflow, so a retry rewrites the same
// record instead of adding one.
func (a *Activities) AppendAudit(ctx context.Context, in AuditInput) (AuditRef, error) {
	rec := in.Record
	for _, key := range in.Keys {
		if key == "" {
			continue // a stage that wrote no file
		}
		b, err := a.Store.Get(ctx, key)
		if err != nil {
			return AuditRef{}, fmt.Errorf("audit: digest %s: %w", key, err)
		}
		sum := sha256.Sum256(b)
		rec.Outputs = append(rec.Outputs, audit.Digest{Key: key, SHA256: hex.EncodeToString(sum[:])})
		if !strings.HasSuffix(key, "manifest.json") {
			continue
		}
		m, err := datasets.ParseManifest(b)
		if err != nil {
			return AuditRef{}, fmt.Errorf("audit: %s: %w", key, err)
		}
		for _, f := range m.Files {
			rec.Outputs = append(rec.Outputs, audit.Digest{Key: f.Key, SHA256: f.SHA256, Rows: f.Rows})
		}
	}
	out, err := audit.Append(ctx, a.Store, rec)
	if err != nil {
		return AuditRef{}, fmt.Errorf("audit: append record %d: %w", rec.Seq, err)
	}
	return AuditRef{Seq: out.Seq, Hash: out.Hash}, nil
}

// AttestInput is what the signed statement says about the release.
type AttestInput struct {
	ReleaseID     string
	ModelName     string
	ModelVersion  string
	Verdict       string
	Gate          gate.Verdict
	ConfigSHA256  string
	ArtifactName  string
	ArtifactHash  string
	ChainHead     string
	ChainRecords  int64
	Decisions     []audit.Decision
	Adversarial   redteam.Summary
	Privacy       privacy.Summary
	Shadow        shadow.Summary
	ExtraSubjects []audit.Subject
	// SuiteMetrics are the metrics of classifier and regressor suites.
	SuiteMetrics map[string]float64
}

// AttestResult says where the attestation is, or why there is none.
type AttestResult struct {
	Key    string
	KeyID  string
	Signed bool
	Note   string
}

// Attest signs an in-toto statement (subject: the model artifact's digest;
// predicate: the evaluation and the verdict) with the worker's ed25519 key.
// A worker without a key writes no attestation and says so.
func (a *Activities) Attest(ctx context.Context, in AttestInput) (AttestResult, error) {
	k, err := keysFor(in.ReleaseID)
	if err != nil {
		return AttestResult{}, err
	}
	if a.AttestationKey == nil {
		return AttestResult{Note: "not signed: the worker has no attestation key (worker --attestation-key)"}, nil
	}
	subjects := append([]audit.Subject{{Name: in.ArtifactName, Digest: map[string]string{"sha256": in.ArtifactHash}}}, in.ExtraSubjects...)
	ev := audit.Evaluation{
		ReleaseID: in.ReleaseID, ModelName: in.ModelName, ModelVersion: in.ModelVersion,
		Verdict: in.Verdict, GateVerdict: in.Gate.Verdict, Rules: audit.GateRules(in.Gate),
		Decisions: in.Decisions, AuditChainHead: in.ChainHead, AuditRecords: in.ChainRecords,
		ConfigSHA256: in.ConfigSHA256, Metrics: withSuites(gate.MetricsFrom(in.Adversarial, in.Privacy, in.Shadow), in.SuiteMetrics),
	}
	pub, _ := a.AttestationKey.Public().(ed25519.PublicKey)
	keyID := audit.KeyID(pub)
	env, err := audit.Sign(audit.NewStatement(subjects, ev), a.AttestationKey, keyID)
	if err != nil {
		return AttestResult{}, fmt.Errorf("sign attestation: %w", err)
	}
	b, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return AttestResult{}, fmt.Errorf("encode attestation: %w", err)
	}
	key := k.audit(audit.AttestationFile)
	if _, err := a.Store.PutBytes(ctx, key, b); err != nil {
		return AttestResult{}, fmt.Errorf("write attestation: %w", err)
	}
	return AttestResult{Key: key, KeyID: keyID, Signed: true}, nil
}
