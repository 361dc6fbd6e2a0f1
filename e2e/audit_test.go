package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/internal/cli"
	"github.com/sandgate/sandgate/internal/testutil"
	"github.com/sandgate/sandgate/workflows"
)

// runCLIEnv runs the starter with S3 pointed at the test stack.
func runCLIEnv(t *testing.T, ctx context.Context, env *stackEnv, args ...string) (int, string) {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL_S3", env.s3cfg.Endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", env.s3cfg.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", env.s3cfg.SecretAccessKey)
	t.Setenv("AWS_REGION", env.s3cfg.Region)
	t.Setenv("SANDGATE_BUCKET", env.s3cfg.Bucket)
	t.Setenv("TEMPORAL_ADDRESS", env.stack.FrontendAddress())
	var out testutil.LockedBuffer
	code := cli.Run(ctx, cli.Env{Stdout: &out, Stderr: &out, Logger: testLogger(t), Getenv: os.Getenv}, args)
	return code, out.String()
}

// TestAuditTrailAttestationRegateAndOverride covers issue 9 on real parts:
// an overridden release is in the audit trail and the signed attestation;
// `release verify` passes, then catches a flipped byte in a result file and
// in an audit record; a stricter policy re-gates the stored results to
// BLOCKED with no worker (so no model) running at all.
func TestAuditTrailAttestationRegateAndOverride(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	env := startStack(t, ctx, dataDir)
	const tq = "audit-test"
	keyDir := t.TempDir()
	privPath, pubPath, err := audit.GenerateKeyPair(keyDir)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := audit.LoadPrivateKey(privPath)
	if err != nil {
		t.Fatal(err)
	}
	stopWorker := env.startWorkerWithKey(t, ctx, tq, priv)

	// A blocked release, overridden by a human with a reason.
	in := loadExample(t, "release-leaky.yaml", func(c *config.Release) {
		c.Suites.Adversarial.Prompts = 200
		c.Suites.Shadow.Requests = 10
		c.Approval.OverrideWindow = config.Duration(10 * time.Minute)
	})
	run := startRelease(t, ctx, env.client, tq, in)
	waitFor(t, ctx, env.client, in.ReleaseID, workflows.WaitingOverride)
	code, out := runCLIEnv(t, ctx, env, "release", "override", in.ReleaseID, "--actor", "bob@sec", "--reason", "accepted risk, ticket SEC-7")
	if code != 0 {
		t.Fatalf("override: exit %d\n%s", code, out)
	}
	res := waitResult(t, ctx, run)
	if res.Verdict != workflows.VerdictReleased || res.AttestationKey == "" || res.AuditHead == "" {
		t.Fatalf("result %+v", res)
	}
	stopWorker() // from here on nothing can call a model

	// The override is in the audit trail...
	objs, err := env.store.List(ctx, layout(t, in.ReleaseID).AuditPrefix()+"log/")
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, o := range objs {
		b, err := env.store.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := audit.ParseRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Kind == audit.KindOverride && rec.Actor == "bob@sec" && rec.Reason == "accepted risk, ticket SEC-7" {
			found = true
		}
	}
	if !found {
		t.Errorf("no override record with actor and reason among %d audit records", len(objs))
	}
	// ... and in the signed attestation, which verifies against the chain.
	code, out = runCLIEnv(t, ctx, env, "attest", "verify", "--key", pubPath, "--release", in.ReleaseID)
	if code != 0 || !strings.Contains(out, "bob@sec") {
		t.Fatalf("attest verify: exit %d, want 0 and the override's actor in the statement\n%s", code, out)
	}

	// Status and the report come back through the CLI a user runs.
	if code, out = runCLIEnv(t, ctx, env, "release", "status", in.ReleaseID); code != 0 || !strings.Contains(out, "report") || !strings.Contains(out, "done") {
		t.Errorf("release status: exit %d\n%s", code, out)
	}
	if code, out = runCLIEnv(t, ctx, env, "release", "report", in.ReleaseID, "--format", "html"); code != 0 || !strings.Contains(out, "<svg") || !strings.Contains(out, "bob@sec") {
		t.Errorf("release report --format html: exit %d, want an HTML page with charts and the override", code)
	}

	// Verify passes on the untouched release.
	if code, out = runCLIEnv(t, ctx, env, "release", "verify", in.ReleaseID); code != 0 {
		t.Fatalf("verify of an untouched release: exit %d\n%s", code, out)
	}

	// Re-gating with a stricter policy flips the verdict, offline.
	strict := filepath.Join(t.TempDir(), "strict.yaml")
	if err := os.WriteFile(strict, []byte("rules:\n  - name: strict-asr\n    expr: m[\"adversarial.asr_upper\"] < 0.01\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = runCLIEnv(t, ctx, env, "gate", "--policy", strict, "--release", in.ReleaseID)
	if code != cli.ExitBlocked || !strings.Contains(out, "strict-asr") {
		t.Fatalf("regate with a strict policy: exit %d, want %d naming strict-asr\n%s", code, cli.ExitBlocked, out)
	}
	lenient := filepath.Join(t.TempDir(), "lenient.yaml")
	if err := os.WriteFile(lenient, []byte("rules:\n  - name: lenient-asr\n    metric: adversarial.asr_upper\n    max: 0.99\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out = runCLIEnv(t, ctx, env, "gate", "--policy", lenient, "--release", in.ReleaseID); code != 0 {
		t.Fatalf("regate with a lenient policy: exit %d\n%s", code, out)
	}

	// One flipped byte in a result file, then in an audit record: caught.
	s3dir := filepath.Join(dataDir, "s3", "buckets", env.s3cfg.Bucket)
	flip := func(key string) {
		t.Helper()
		p := filepath.Join(s3dir, filepath.FromSlash(key))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x01
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	part := layout(t, in.ReleaseID).ResultsPrefix() + "adversarial/shard=001/part-00000.parquet"
	flip(part)
	code, out = runCLIEnv(t, ctx, env, "release", "verify", in.ReleaseID)
	if code == 0 || !strings.Contains(out, part) {
		t.Fatalf("verify after flipping a byte of %s: exit %d\n%s", part, code, out)
	}
	flip(part) // restore
	flip(objs[2].Key)
	code, out = runCLIEnv(t, ctx, env, "release", "verify", in.ReleaseID)
	if code == 0 || !strings.Contains(out, "seq") {
		t.Fatalf("verify after flipping a byte of %s: exit %d\n%s", objs[2].Key, code, out)
	}
}
