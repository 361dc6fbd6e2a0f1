package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/sandgate/sandgate/internal/testutil"
)

// Bad schedule flags are bad input (exit 2), named in the message, and
// caught before any connection is attempted (no server runs here).
func TestScheduleCreateBadFlagsExitTwo(t *testing.T) {
	const cfg = "../../examples/release.yaml"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"schedule", "create", "-f", cfg}, "--every"},
		{[]string{"schedule", "create", "-f", cfg, "--every", "100ms"}, "--every 100ms"},
		{[]string{"schedule", "create", "-f", cfg, "--every", "soon"}, "--every"},
		{[]string{"schedule", "create", "-f", cfg, "--every", "1h", "--cron", "0 2 * * *"}, "--cron"},
		{[]string{"schedule", "create", "-f", cfg, "--cron", "0 2"}, "--cron"},
		{[]string{"schedule", "create", "--every", "1h"}, "file"},
		{[]string{"schedule", "create", "-f", "does-not-exist.yaml", "--every", "1h"}, "does-not-exist.yaml"},
		{[]string{"schedule", "delete"}, "arg"},
	} {
		out := &testutil.LockedBuffer{}
		env := Env{Stdout: out, Stderr: out, Getenv: func(k string) string {
			if k == "TEMPORAL_ADDRESS" {
				return "127.0.0.1:1" // would fail to connect: must not be reached
			}
			return ""
		}}
		code := Run(t.Context(), env, tt.args)
		if code != ExitBadInput || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%v: exit %d, output %q; want exit %d naming %q", tt.args, code, out.String(), ExitBadInput, tt.want)
		}
	}
}

func TestScheduleBadTemporalEnvExitsTwo(t *testing.T) {
	out := &testutil.LockedBuffer{}
	env := Env{Stdout: out, Stderr: out, Getenv: func(k string) string {
		if k == "TEMPORAL_TLS" {
			return "sometimes"
		}
		return ""
	}}
	if code := Run(t.Context(), env, []string{"schedule", "list"}); code != ExitBadInput || !strings.Contains(out.String(), "TEMPORAL_TLS") {
		t.Errorf("exit %d, output %q; want %d naming TEMPORAL_TLS", code, out.String(), ExitBadInput)
	}
}

func TestDevBadMetricsListenExitsTwo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("dev checks the sandbox before the metrics address; that needs root here")
	}
	out := &testutil.LockedBuffer{}
	env := Env{Stdout: out, Stderr: out, Getenv: func(string) string { return "" }}
	code := Run(t.Context(), env, []string{"dev", "-f", "../../examples/release.yaml", "--data-dir", t.TempDir(), "--metrics-listen", "no-port"})
	if code != ExitBadInput || !strings.Contains(out.String(), "--metrics-listen") || strings.Contains(out.String(), "starting embedded stack") {
		t.Errorf("exit %d, output %q; want %d naming --metrics-listen before the stack starts", code, out.String(), ExitBadInput)
	}
}
