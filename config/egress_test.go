package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/sandgate/sandgate/sandbox"
)

// withEgress puts an egress block into the example's candidate sandbox.
func withEgress(t testing.TB, good, block string) string {
	anchor := "    budget: {requests: 100000, timeout: 30s}\n"
	if !strings.Contains(good, anchor) {
		t.Fatalf("example lost the line %q the egress tests anchor on", anchor)
	}
	return strings.Replace(good, anchor, anchor+block, 1)
}

func TestEgressAllowParsed(t *testing.T) {
	y := withEgress(t, string(exampleBytes(t)), "    egress:\n      allow:\n        - {name: vector-store, address: \"127.0.0.1:6333\"}\n        - {address: \"payments.internal:443\"}\n")
	r, err := Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	got := r.Model.Sandbox.Egress.Allow
	if len(got) != 2 || got[0] != (EgressRule{Name: "vector-store", Address: "127.0.0.1:6333"}) || got[1].Address != "payments.internal:443" {
		t.Fatalf("allow = %+v", got)
	}
}

func TestEgressAllowNamesTheField(t *testing.T) {
	good := string(exampleBytes(t))
	for _, tc := range []struct{ name, block, want string }{
		{"no port", "    egress: {allow: [{address: vectors}]}\n", "model.sandbox.egress.allow[0].address: address \"vectors\" is not host:port"},
		{"bad port", "    egress: {allow: [{address: \"h:0\"}]}\n", "model.sandbox.egress.allow[0].address: address \"h:0\": port \"0\" is not a TCP port"},
		{"bad host", "    egress: {allow: [{address: \"a b:80\"}]}\n", "model.sandbox.egress.allow[0].address: address \"a b:80\": host"},
		{"duplicate", "    egress: {allow: [{address: \"h:1\"}, {address: \"H.:1\"}]}\n", "model.sandbox.egress.allow[1].address: h:1 is already allowed by entry 0"},
		{"dup name", "    egress: {allow: [{name: x, address: \"h:1\"}, {name: x, address: \"h:2\"}]}\n", "model.sandbox.egress.allow[1].name: \"x\" is already the name"},
		{"model port", "    egress: {allow: [{address: \"127.0.0.1:8000\"}]}\n", "model.sandbox.egress.allow[0].address: 127.0.0.1:8000 uses the model's own port 8000"},
		{"typo", "    egress: {alow: [{address: \"h:1\"}]}\n", "model.sandbox.egress.alow: unknown field; did you mean \"allow\"?"},
		{"other provider", "    image: m:1\n    docker: {splice_binary: /s}\n    egress: {allow: [{address: \"h:1\"}]}\n", "model.sandbox.egress.allow: is only enforced by the process provider"},
		{"missing address", "    egress: {allow: [{name: x}]}\n", "model.sandbox.egress.allow[0].address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := withEgress(t, good, tc.block)
			if tc.name == "other provider" {
				y = strings.Replace(y, "    provider: process\n", "    provider: docker\n", 1)
			}
			_, err := Parse([]byte(y))
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// FuzzEgressAllow: any address either is refused with an error naming the
// entry's field, or is accepted by the sandbox too, so a release that
// passes validation never fails later at sandbox start.
func FuzzEgressAllow(f *testing.F) {
	for _, a := range []string{"127.0.0.1:6333", "[::1]:80", "db:5432", "h:0", "x", "a b:1", "[fe80::1%lo]:1", "127.0.0.1:8000"} {
		f.Add("svc", a)
	}
	f.Fuzz(func(t *testing.T, name, addr string) {
		rules := []EgressRule{{Name: name, Address: addr}}
		var errs []string
		validateEgress("p", rules, 8000, func(path, format string, args ...any) {
			if path != "p[0].address" && path != "p[0].name" {
				t.Fatalf("error at %q does not name the entry's field", path)
			}
			errs = append(errs, path)
		})
		if len(errs) == 0 {
			if err := sandbox.ValidateEgress([]sandbox.EgressRule{{Name: name, Address: addr}}); err != nil {
				t.Fatalf("config accepted %q/%q but the sandbox refuses it: %v", name, addr, err)
			}
		}
	})
}
