package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"go.temporal.io/sdk/client"
)

// TLSConfig is how the client authenticates the server and, with a client
// certificate, itself (mTLS). Paths and inline PEM data are alternatives,
// as in the SDK's environment configuration.
type TLSConfig struct {
	// Disabled turns TLS off even when an API key would turn it on.
	Disabled                      bool
	ClientCertPath, ClientKeyPath string
	ClientCertData, ClientKeyData []byte
	ServerCACertPath              string
	ServerCACertData              []byte
	ServerName                    string
	DisableHostVerification       bool
}

// The variables below are the Temporal SDKs' standard environment
// configuration (go.temporal.io/sdk/contrib/envconfig reads the same
// names); the temporal CLI understands them too, so one environment serves
// the worker, the starter and `temporal workflow list`.
const (
	EnvAddress                    = "TEMPORAL_ADDRESS"
	EnvNamespace                  = "TEMPORAL_NAMESPACE"
	EnvAPIKey                     = "TEMPORAL_API_KEY"
	EnvTLS                        = "TEMPORAL_TLS"
	EnvTLSClientCertPath          = "TEMPORAL_TLS_CLIENT_CERT_PATH"
	EnvTLSClientCertData          = "TEMPORAL_TLS_CLIENT_CERT_DATA"
	EnvTLSClientKeyPath           = "TEMPORAL_TLS_CLIENT_KEY_PATH"
	EnvTLSClientKeyData           = "TEMPORAL_TLS_CLIENT_KEY_DATA"
	EnvTLSServerCACertPath        = "TEMPORAL_TLS_SERVER_CA_CERT_PATH"
	EnvTLSServerCACertData        = "TEMPORAL_TLS_SERVER_CA_CERT_DATA"
	EnvTLSServerName              = "TEMPORAL_TLS_SERVER_NAME"
	EnvTLSDisableHostVerification = "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"
	// EnvGRPCMetaPrefix: TEMPORAL_GRPC_META_X_FOO=bar sends header x-foo: bar.
	EnvGRPCMetaPrefix = "TEMPORAL_GRPC_META_"
)

// TemporalFromEnv reads the standard variables from the process
// environment; see LoadTemporalEnv.
func TemporalFromEnv() (TemporalConfig, error) {
	return LoadTemporalEnv(os.Getenv, os.Environ())
}

// LoadTemporalEnv reads TEMPORAL_ADDRESS (default 127.0.0.1:7233),
// TEMPORAL_NAMESPACE (default "default"), TEMPORAL_API_KEY, TEMPORAL_TLS*
// and TEMPORAL_GRPC_META_* with getenv; environ (KEY=VALUE lines, as
// os.Environ) is only scanned for the TEMPORAL_GRPC_META_ prefix and may be
// nil. An API key turns TLS on unless TEMPORAL_TLS=false. A boolean that is
// not true/false/1/0 is an error naming the variable; certificate files are
// read when dialing, not here.
func LoadTemporalEnv(getenv func(string) string, environ []string) (TemporalConfig, error) {
	c := TemporalConfig{Address: getenv(EnvAddress), Namespace: getenv(EnvNamespace), APIKey: getenv(EnvAPIKey)}
	if c.Address == "" {
		c.Address = "127.0.0.1:7233"
	}
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	var t TLSConfig
	set := false
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst, set = v, true
		}
	}
	data := func(name string, dst *[]byte) {
		if v := getenv(name); v != "" {
			*dst, set = []byte(v), true
		}
	}
	boolean := func(name string, dst *bool) error {
		v := getenv(name)
		if v == "" {
			return nil
		}
		switch strings.ToLower(v) {
		case "1", "true":
			*dst = true
		case "0", "false":
			*dst = false
		default:
			return fmt.Errorf("%s=%q: use true or false", name, v)
		}
		set = true
		return nil
	}
	tlsOn := false
	if err := boolean(EnvTLS, &tlsOn); err != nil {
		return c, err
	}
	t.Disabled = set && !tlsOn
	str(EnvTLSClientCertPath, &t.ClientCertPath)
	data(EnvTLSClientCertData, &t.ClientCertData)
	str(EnvTLSClientKeyPath, &t.ClientKeyPath)
	data(EnvTLSClientKeyData, &t.ClientKeyData)
	str(EnvTLSServerCACertPath, &t.ServerCACertPath)
	data(EnvTLSServerCACertData, &t.ServerCACertData)
	str(EnvTLSServerName, &t.ServerName)
	if err := boolean(EnvTLSDisableHostVerification, &t.DisableHostVerification); err != nil {
		return c, err
	}
	if set {
		c.TLS = &t
	}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvGRPCMetaPrefix) || value == "" {
			continue
		}
		if c.GRPCMeta == nil {
			c.GRPCMeta = map[string]string{}
		}
		key := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, EnvGRPCMetaPrefix), "_", "-"))
		c.GRPCMeta[key] = value
	}
	return c, nil
}

// tlsConfig builds the client's TLS settings: nil means plaintext. A
// client certificate needs its key and the other way round; one of path
// and data, not both.
func (t *TLSConfig) tlsConfig() (*tls.Config, error) {
	if t == nil || t.Disabled {
		return nil, nil
	}
	conf := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.DisableHostVerification, MinVersion: tls.VersionTLS12} // #nosec G402 -- only when the operator asks for it
	certPEM, err := pemFrom("client certificate", EnvTLSClientCertPath, EnvTLSClientCertData, t.ClientCertPath, t.ClientCertData)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pemFrom("client key", EnvTLSClientKeyPath, EnvTLSClientKeyData, t.ClientKeyPath, t.ClientKeyData)
	if err != nil {
		return nil, err
	}
	switch {
	case len(certPEM) > 0 && len(keyPEM) > 0:
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("temporal mTLS client certificate/key (%s, %s): %w", EnvTLSClientCertPath, EnvTLSClientKeyPath, err)
		}
		conf.Certificates = []tls.Certificate{cert}
	case len(certPEM) > 0:
		return nil, fmt.Errorf("temporal mTLS: a client certificate without its key; set %s or %s", EnvTLSClientKeyPath, EnvTLSClientKeyData)
	case len(keyPEM) > 0:
		return nil, fmt.Errorf("temporal mTLS: a client key without its certificate; set %s or %s", EnvTLSClientCertPath, EnvTLSClientCertData)
	}
	caPEM, err := pemFrom("server CA certificate", EnvTLSServerCACertPath, EnvTLSServerCACertData, t.ServerCACertPath, t.ServerCACertData)
	if err != nil {
		return nil, err
	}
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("temporal TLS: no PEM certificate in the server CA (%s / %s)", EnvTLSServerCACertPath, EnvTLSServerCACertData)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

func pemFrom(what, pathVar, dataVar, path string, data []byte) ([]byte, error) {
	if path != "" && len(data) > 0 {
		return nil, fmt.Errorf("temporal TLS %s: set %s or %s, not both", what, pathVar, dataVar)
	}
	if path == "" {
		return data, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("temporal TLS %s (%s): %w", what, pathVar, err)
	}
	return b, nil
}

// ClientOptions maps the configuration to the SDK's client options (without
// logger, codec and metrics, which Dial adds): an API key becomes static
// credentials and turns TLS on unless TLS is disabled explicitly.
func (tc TemporalConfig) ClientOptions() (client.Options, error) {
	opts := client.Options{HostPort: tc.Address, Namespace: tc.Namespace}
	if tc.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(tc.APIKey)
	}
	conf, err := tc.TLS.tlsConfig()
	if err != nil {
		return opts, err
	}
	if conf == nil && tc.APIKey != "" && (tc.TLS == nil || !tc.TLS.Disabled) {
		conf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	opts.ConnectionOptions.TLS = conf
	if len(tc.GRPCMeta) > 0 {
		opts.HeadersProvider = staticHeaders(tc.GRPCMeta)
	}
	return opts, nil
}

type staticHeaders map[string]string

func (h staticHeaders) GetHeaders(context.Context) (map[string]string, error) { return h, nil }
