package cli

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/converter"

	"github.com/sandgate/sandgate/codec"
)

// EnvCodecToken holds the codec server's bearer token, so it need not
// appear on a command line (where ps shows it).
const EnvCodecToken = "SANDGATE_CODEC_TOKEN"

// maxCodecBody bounds a request: the server rejects payloads over 2 MiB,
// and a batch the UI decodes is a page of events, base64 in JSON.
const maxCodecBody = 32 << 20

func newCodecServerCmd(env Env) *cobra.Command {
	var keys, listen, token string
	var origins []string
	cmd := &cobra.Command{
		Use:   "codec-server --keys FILE [--listen ADDR] [--token T] [--cors-origin URL]",
		Short: "Serve the payload codec over HTTP so the Temporal Web UI can show encrypted payloads",
		Long: `codec-server decrypts (and encrypts) payloads for the Temporal Web UI and
the temporal CLI (--codec-endpoint). Point the UI at it (TEMPORAL_CODEC_ENDPOINT,
or the codec endpoint in the UI's settings) with the same keys the workers use.

Keys: --keys FILE, or $` + codec.EnvKeys + ` when --keys is not given.
Token: --token or $` + EnvCodecToken + `; requests must then carry
"Authorization: Bearer <token>". The Web UI sends a bearer token only when its
own login is on and it passes the access token to the codec; without a token
the server answers anyone who can reach it, so keep it on loopback.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pc, err := codec.Load(keys, env.Getenv)
			if err != nil {
				return withCode(ExitBadInput, err)
			}
			if pc == nil {
				return withCode(ExitBadInput, fmt.Errorf("codec-server needs keys: --keys FILE or $%s", codec.EnvKeys))
			}
			if token == "" {
				token = env.Getenv(EnvCodecToken)
			}
			for _, o := range origins {
				if o == "*" || !strings.Contains(o, "://") || strings.HasSuffix(o, "/") {
					return withCode(ExitBadInput, fmt.Errorf("--cors-origin %q: give the Web UI's origin as scheme://host[:port], e.g. http://127.0.0.1:8233", o))
				}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return withCode(ExitBadInput, fmt.Errorf("codec-server: listen on %s (--listen): %w", listen, err))
			}
			if token == "" && !isLoopback(ln.Addr()) {
				env.Logger.Warn("codec server has no token and listens beyond loopback: anyone who reaches it can decrypt payloads", "listen", ln.Addr().String())
			}
			srv := serveCodec(ln, newCodecHandler(pc, token, origins), env)
			fmt.Fprintf(env.Stdout, "codec server on http://%s (auth %s, CORS %s)\n", ln.Addr(), authMode(token), orNone(strings.Join(origins, " ")))
			<-cmd.Context().Done()
			return shutdownCodec(srv)
		},
	}
	f := cmd.Flags()
	f.StringVar(&keys, "keys", "", "key file: lines id:base64key (newest last) or JSON; default $"+codec.EnvKeys)
	f.StringVar(&listen, "listen", "127.0.0.1:8081", "address to serve on")
	f.StringVar(&token, "token", "", "bearer token requests must carry; default $"+EnvCodecToken+"; empty: no auth")
	f.StringSliceVar(&origins, "cors-origin", []string{"http://127.0.0.1:8233"}, "Web UI origin(s) allowed to call from a browser")
	return cmd
}

func authMode(token string) string {
	if token == "" {
		return "off"
	}
	return "bearer token"
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// newCodecHandler wraps the SDK's codec handler (POST …/encode, …/decode)
// with CORS for the Web UI and bearer-token auth. Preflight requests are
// answered before auth because browsers never send credentials on them.
func newCodecHandler(pc converter.PayloadCodec, token string, origins []string) http.Handler {
	inner := converter.NewPayloadCodecHTTPHandler(pc)
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && slices.Contains(origins, origin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			// The UI sends X-Namespace with each batch.
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
			h.Set("Access-Control-Max-Age", "600")
		}
		w.Header().Add("Vary", "Origin")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sandgate codec"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxCodecBody)
		inner.ServeHTTP(w, r)
	})
}

// serveCodec serves h on ln until shutdownCodec.
func serveCodec(ln net.Listener, h http.Handler, env Env) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			env.Logger.Error("codec server stopped", "err", err)
		}
	}()
	return srv
}

func shutdownCodec(srv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("stop codec server: %w", err)
	}
	return nil
}
