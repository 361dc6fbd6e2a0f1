package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/objstore"
)

// newVerifyCmd is `release verify ID`: recompute the audit chain and rehash
// every object it names. Exit 0 when intact, 1 with each problem printed.
func newVerifyCmd(env Env) *cobra.Command {
	var asJSON, chainOnly bool
	cmd := &cobra.Command{
		Use:   "verify ID",
		Short: "Recompute a release's audit chain from S3 and report any tampering",
		Long: `verify reads releases/ID/audit/log/ from S3, recomputes every record's hash and
link, checks the chain is closed, and downloads every object a record names to
compare its sha256. Exit 0 when everything verifies, 1 when anything does not.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id := args[0]
			if err := datasets.ValidateReleaseID(id); err != nil {
				return withCode(ExitBadInput, err)
			}
			store, err := auditStore(ctx)
			if err != nil {
				return err
			}
			verify := audit.Verify
			if chainOnly {
				verify = audit.VerifyChain
			}
			rep, err := verify(ctx, store, id)
			if err != nil {
				return withCode(ExitError, err)
			}
			if asJSON {
				b, err := json.MarshalIndent(rep, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "%s\n", b)
			} else {
				printVerifyReport(env.Stdout, rep)
			}
			if !rep.OK {
				return withCode(ExitError, fmt.Errorf("release %s: audit trail does not verify (%d problems)", id, len(rep.Problems)))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().BoolVar(&chainOnly, "chain-only", false, "check the records only, without downloading the objects they name")
	return cmd
}

func printVerifyReport(out io.Writer, rep audit.VerifyReport) {
	if rep.OK {
		fmt.Fprintf(out, "release %s: audit trail intact: %d records, %d objects rehashed, head %s\n",
			rep.ReleaseID, rep.Records, rep.Objects, rep.Head)
		return
	}
	fmt.Fprintf(out, "release %s: TAMPERING OR DAMAGE: %d problems in %d records\n", rep.ReleaseID, len(rep.Problems), rep.Records)
	for _, p := range rep.Problems {
		fmt.Fprintf(out, "  seq %-6d %s\n             %s\n", p.Seq, p.Key, p.What)
	}
}

// newAttestCmd is `attest verify` and `attest keygen`.
func newAttestCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{Use: "attest", Short: "Verify signed release attestations; generate signing keys"}

	var keyPath, releaseID, file string
	verify := &cobra.Command{
		Use:   "verify --key PUB.pem (--release ID | --file ENVELOPE.json)",
		Short: "Check an attestation's signature and that it matches the release's audit chain",
		Long: `verify checks the DSSE signature of releases/ID/audit/attestation.json (or of a
local --file) with the public key, prints the signed statement, and, with
--release, checks that the audit chain on S3 is intact and that its head is the
one the attestation signed. Exit 0 when verified, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if releaseID == "" && file == "" {
				return withCode(ExitBadInput, errors.New("pass --release ID (reads the attestation and audit chain from S3) or --file ENVELOPE.json"))
			}
			if releaseID != "" {
				if err := datasets.ValidateReleaseID(releaseID); err != nil {
					return withCode(ExitBadInput, err)
				}
			}
			pub, err := audit.LoadPublicKey(keyPath)
			if err != nil {
				return withCode(ExitBadInput, err)
			}
			var store *objstore.Store
			if releaseID != "" {
				if store, err = auditStore(ctx); err != nil {
					return err
				}
			}
			raw, src, err := readAttestation(ctx, store, releaseID, file)
			if err != nil {
				return err
			}
			envelope, err := audit.ParseEnvelope(raw)
			if err != nil {
				return withCode(ExitError, fmt.Errorf("%s: %w", src, err))
			}
			st, err := audit.VerifyEnvelope(envelope, pub)
			if err != nil {
				return withCode(ExitError, fmt.Errorf("%s: %w", src, err))
			}
			ev, err := st.Evaluation()
			if err != nil {
				return withCode(ExitError, fmt.Errorf("%s: %w", src, err))
			}
			printStatement(env.Stdout, src, audit.KeyID(pub), st, ev)
			if releaseID == "" {
				return nil
			}
			if ev.ReleaseID != releaseID {
				return withCode(ExitError, fmt.Errorf("%s is about release %q, not %q: it was copied from another release", src, ev.ReleaseID, releaseID))
			}
			rep, err := audit.VerifyChain(ctx, store, releaseID)
			if err != nil {
				return withCode(ExitError, err)
			}
			if !rep.OK {
				printVerifyReport(env.Stdout, rep)
				return withCode(ExitError, fmt.Errorf("release %s: the audit chain behind the attestation does not verify", releaseID))
			}
			if rep.Head != ev.AuditChainHead {
				return withCode(ExitError, fmt.Errorf("release %s: the attestation signed audit head %s but the chain's head is %s: the chain changed after signing", releaseID, ev.AuditChainHead, rep.Head))
			}
			fmt.Fprintf(env.Stdout, "audit chain: %d records, head matches the attestation (run `starter release verify %s` to rehash the data too)\n", rep.Records, releaseID)
			return nil
		},
	}
	verify.Flags().StringVar(&keyPath, "key", "", "ed25519 public key (PEM, PKIX)")
	verify.Flags().StringVar(&releaseID, "release", "", "release id: read releases/ID/audit/attestation.json from S3 and check the audit chain")
	verify.Flags().StringVar(&file, "file", "", "read the envelope from this local file instead of S3")
	_ = verify.MarkFlagRequired("key")

	var outDir string
	keygen := &cobra.Command{
		Use:   "keygen --out DIR",
		Short: "Write a new ed25519 signing key pair (DIR/attestation.key 0600, DIR/attestation.pub)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			privPath, pubPath, err := audit.GenerateKeyPair(outDir)
			if err != nil {
				return withCode(ExitBadInput, err)
			}
			pub, err := audit.LoadPublicKey(pubPath)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "private key: %s (keep it secret; point the release config at it)\npublic key:  %s (give it to whoever verifies)\nkey id:      %s\n",
				privPath, pubPath, audit.KeyID(pub))
			return nil
		},
	}
	keygen.Flags().StringVar(&outDir, "out", "", "directory for the key pair (created 0700 if missing; existing keys are never overwritten)")
	_ = keygen.MarkFlagRequired("out")

	cmd.AddCommand(verify, keygen)
	return cmd
}

func readAttestation(ctx context.Context, store *objstore.Store, releaseID, file string) ([]byte, string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, file, withCode(ExitBadInput, fmt.Errorf("read attestation: %w", err))
		}
		return b, file, nil
	}
	l, err := datasets.NewLayout(releaseID)
	if err != nil {
		return nil, "", withCode(ExitBadInput, err)
	}
	key, err := l.Audit(audit.AttestationFile)
	if err != nil {
		return nil, "", err
	}
	src := "s3://" + store.Bucket() + "/" + key
	b, err := store.Get(ctx, key)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, src, withCode(ExitError, fmt.Errorf("release %s has no attestation at %s: it was never signed (no signing key in the config) or it was deleted", releaseID, src))
	}
	if err != nil {
		return nil, src, fmt.Errorf("read attestation: %w", err)
	}
	return b, src, nil
}

func printStatement(out io.Writer, src, keyID string, st audit.Statement, ev audit.Evaluation) {
	fmt.Fprintf(out, "attestation %s: signature OK (key %s)\n", src, keyID)
	for _, s := range st.Subject {
		fmt.Fprintf(out, "  subject   %s sha256:%s\n", s.Name, s.Digest["sha256"])
	}
	fmt.Fprintf(out, "  release   %s  verdict %s", ev.ReleaseID, ev.Verdict)
	if ev.GateVerdict != "" && ev.GateVerdict != ev.Verdict {
		fmt.Fprintf(out, " (gate said %s)", ev.GateVerdict)
	}
	fmt.Fprintln(out)
	for _, d := range ev.Decisions {
		fmt.Fprintf(out, "  %-9s by %s: %s\n", d.Kind, d.Actor, d.Reason)
	}
	fmt.Fprintf(out, "  config    sha256:%s\n  audit     head %s (%d records)\n", ev.ConfigSHA256, ev.AuditChainHead, ev.AuditRecords)
}

// auditStore connects to the release bucket. objstore reads the process
// environment directly, not Env.Getenv.
func auditStore(ctx context.Context) (*objstore.Store, error) {
	store, err := objstore.New(ctx, objstore.ConfigFromEnv())
	if err != nil {
		return nil, withCode(ExitBadInput, fmt.Errorf("connect to S3: %w", err))
	}
	return store, nil
}
