package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) (func(string) string, []string) {
	var environ []string
	for k, v := range m {
		environ = append(environ, k+"="+v)
	}
	return func(k string) string { return m[k] }, environ
}

// selfSigned writes a certificate and its key as PEM files.
func selfSigned(t *testing.T, dir string) (certPath, keyPath string, certPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "worker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certPath, keyPath = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	if err := os.WriteFile(certPath, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath, certPEM
}

func TestLoadTemporalEnvDefaultsArePlaintextLocal(t *testing.T) {
	tc, err := LoadTemporalEnv(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if tc.Address != "127.0.0.1:7233" || tc.Namespace != "default" || tc.TLS != nil || tc.APIKey != "" {
		t.Fatalf("defaults: %+v", tc)
	}
	opts, err := tc.ClientOptions()
	if err != nil {
		t.Fatal(err)
	}
	if opts.ConnectionOptions.TLS != nil || opts.Credentials != nil || opts.HeadersProvider != nil {
		t.Errorf("defaults dial with TLS %v, credentials %v, headers %v", opts.ConnectionOptions.TLS, opts.Credentials, opts.HeadersProvider)
	}
}

func TestLoadTemporalEnvAPIKeyTurnsTLSOnUnlessDisabled(t *testing.T) {
	tc, err := LoadTemporalEnv(envOf(map[string]string{EnvAddress: "ns.acct.tmprl.cloud:7233", EnvNamespace: "ns.acct", EnvAPIKey: "k-123"}))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := tc.ClientOptions()
	if err != nil {
		t.Fatal(err)
	}
	if opts.HostPort != "ns.acct.tmprl.cloud:7233" || opts.Namespace != "ns.acct" {
		t.Errorf("host %q namespace %q", opts.HostPort, opts.Namespace)
	}
	if opts.Credentials == nil || opts.ConnectionOptions.TLS == nil {
		t.Fatalf("API key: credentials %v TLS %v, want both", opts.Credentials, opts.ConnectionOptions.TLS)
	}

	tc, err = LoadTemporalEnv(envOf(map[string]string{EnvAPIKey: "k-123", EnvTLS: "false"}))
	if err != nil {
		t.Fatal(err)
	}
	opts, err = tc.ClientOptions()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Credentials == nil || opts.ConnectionOptions.TLS != nil {
		t.Errorf("API key with TEMPORAL_TLS=false: credentials %v TLS %v, want credentials and plaintext", opts.Credentials, opts.ConnectionOptions.TLS)
	}
}

func TestLoadTemporalEnvMTLSFromPathsAndData(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, caPEM := selfSigned(t, dir)
	tc, err := LoadTemporalEnv(envOf(map[string]string{
		EnvTLSClientCertPath: certPath, EnvTLSClientKeyPath: keyPath,
		EnvTLSServerCACertData: string(caPEM), EnvTLSServerName: "temporal.internal",
		EnvTLSDisableHostVerification: "TRUE",
	}))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := tc.ClientOptions()
	if err != nil {
		t.Fatal(err)
	}
	conf := opts.ConnectionOptions.TLS
	if conf == nil {
		t.Fatal("mTLS variables set but TLS off")
	}
	if len(conf.Certificates) != 1 || conf.RootCAs == nil || conf.ServerName != "temporal.internal" || !conf.InsecureSkipVerify {
		t.Errorf("tls.Config: %d certs, roots %v, server name %q, skip verify %v", len(conf.Certificates), conf.RootCAs != nil, conf.ServerName, conf.InsecureSkipVerify)
	}
	if opts.Credentials != nil {
		t.Error("mTLS alone must not send an API key")
	}
}

func TestLoadTemporalEnvErrorsNameTheVariable(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, _ := selfSigned(t, dir)
	for _, tt := range []struct {
		env  map[string]string
		want string // in the error
		dial bool   // the error comes from ClientOptions, not loading
	}{
		{map[string]string{EnvTLS: "yes"}, EnvTLS, false},
		{map[string]string{EnvTLSDisableHostVerification: "maybe"}, EnvTLSDisableHostVerification, false},
		{map[string]string{EnvTLSClientCertPath: certPath}, EnvTLSClientKeyPath, true},
		{map[string]string{EnvTLSClientKeyPath: keyPath}, EnvTLSClientCertPath, true},
		{map[string]string{EnvTLSClientCertPath: certPath, EnvTLSClientCertData: "x", EnvTLSClientKeyPath: keyPath}, EnvTLSClientCertData, true},
		{map[string]string{EnvTLSClientCertPath: filepath.Join(dir, "missing.pem"), EnvTLSClientKeyPath: keyPath}, EnvTLSClientCertPath, true},
		{map[string]string{EnvTLSServerCACertData: "not pem"}, EnvTLSServerCACertPath, true},
	} {
		tc, err := LoadTemporalEnv(envOf(tt.env))
		if !tt.dial {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%v: error %v, want one naming %s", tt.env, err, tt.want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tt.env, err)
		}
		if _, err := tc.ClientOptions(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want one naming %s", tt.env, err, tt.want)
		}
	}
}

func TestLoadTemporalEnvGRPCMeta(t *testing.T) {
	tc, err := LoadTemporalEnv(envOf(map[string]string{"TEMPORAL_GRPC_META_X_TENANT_ID": "blue", "TEMPORAL_GRPC_META_EMPTY": "", "OTHER": "1"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(tc.GRPCMeta) != 1 || tc.GRPCMeta["x-tenant-id"] != "blue" {
		t.Fatalf("grpc meta %v, want x-tenant-id=blue only", tc.GRPCMeta)
	}
	opts, err := tc.ClientOptions()
	if err != nil {
		t.Fatal(err)
	}
	h, err := opts.HeadersProvider.GetHeaders(t.Context())
	if err != nil || h["x-tenant-id"] != "blue" {
		t.Errorf("headers %v, %v", h, err)
	}
}

// Any environment either loads or is refused with the variable named; no
// value makes loading or option building panic.
func FuzzLoadTemporalEnv(f *testing.F) {
	f.Add("true", "1", "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n", "k", "X_A=b")
	f.Add("maybe", "", "", "", "=")
	f.Fuzz(func(t *testing.T, tlsOn, noVerify, ca, apiKey, meta string) {
		env := map[string]string{EnvTLS: tlsOn, EnvTLSDisableHostVerification: noVerify, EnvTLSServerCACertData: ca, EnvAPIKey: apiKey}
		get := func(k string) string { return env[k] }
		tc, err := LoadTemporalEnv(get, []string{EnvGRPCMetaPrefix + meta})
		if err != nil {
			if !strings.Contains(err.Error(), "TEMPORAL_TLS") {
				t.Fatalf("error without the variable's name: %v", err)
			}
			return
		}
		if _, err := tc.ClientOptions(); err != nil && !strings.Contains(err.Error(), "TEMPORAL_") {
			t.Fatalf("error without a variable's name: %v", err)
		}
	})
}
