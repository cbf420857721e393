package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/tributary-edge/tributary/internal/tlsconf"
)

// Values of --auth.
const (
	authCreds = "creds"
	authNone  = "none"
)

// security is what the security flags set (DESIGN.md, "Security").
type security struct {
	auth                      string
	apiToken, apiTokensFile   string
	insecure                  bool
	tlsCert, tlsKey, clientCA string
	natsCreds                 string

	// Set by check.
	tokens   []string
	tls      *tls.Config
	warnings []string
}

func (s *security) register(fs *flag.FlagSet) {
	fs.StringVar(&s.auth, "auth", "", "`MODE` of NATS authentication: creds (every client presents a credential made by \"hub node add\") or none; the default is creds unless every listener is loopback")
	fs.StringVar(&s.apiToken, "api-token", "", "bearer `TOKEN` that every /api/v1 route and /metrics require")
	fs.StringVar(&s.apiTokensFile, "api-tokens-file", "", "`FILE` of bearer tokens, one a line, that every /api/v1 route and /metrics accept")
	fs.BoolVar(&s.insecure, "insecure", false, "allow --auth none or no API token on a non-loopback listener")
	fs.StringVar(&s.tlsCert, "tls-cert", "", "certificate `FILE` (PEM) of the NATS, cluster and HTTP listeners")
	fs.StringVar(&s.tlsKey, "tls-key", "", "private key `FILE` (PEM) of --tls-cert")
	fs.StringVar(&s.clientCA, "tls-client-ca", "", "CA `FILE` (PEM) that NATS clients' certificates must be signed by (mTLS)")
	fs.StringVar(&s.natsCreds, "nats-creds", "", "credentials `FILE` for --nats-url")
}

// check resolves the defaults and refuses an exposed listener without
// protection: natsAddr is the NATS listener ("" when there is none, with
// --nats-url), httpAddr the API's.
func (s *security) check(natsAddr, httpAddr string) error {
	switch s.auth {
	case "":
		s.auth = authNone
		if natsAddr != "" && !loopback(natsAddr) || !loopback(httpAddr) {
			s.auth = authCreds
		}
	case authCreds, authNone:
	default:
		return fmt.Errorf("--auth %q: want creds or none", s.auth)
	}
	var err error
	if s.tokens, err = s.readTokens(); err != nil {
		return err
	}
	if s.tls, err = tlsconf.Server(s.tlsCert, s.tlsKey, s.clientCA); err != nil {
		return err
	}
	var exposed []string
	if natsAddr != "" && s.auth == authNone && !loopback(natsAddr) {
		exposed = append(exposed, fmt.Sprintf("the NATS listener %s is not loopback and --auth is none: any client on the network could read every node's data, pose as any node and delete the stream; use --auth creds and give each edge a credential made by \"hub node add\"", natsAddr))
	}
	if len(s.tokens) == 0 && !loopback(httpAddr) {
		exposed = append(exposed, fmt.Sprintf("the HTTP listener %s is not loopback and has no API token: anyone on the network could read the fleet's data; set --api-token or --api-tokens-file", httpAddr))
	}
	if len(exposed) == 0 {
		return nil
	}
	if s.insecure {
		for _, e := range exposed {
			s.warnings = append(s.warnings, "INSECURE (--insecure): "+e)
		}
		return nil
	}
	return errors.New(strings.Join(exposed, "; ") + " (or pass --insecure to run exposed anyway)")
}

// httpTLS is the HTTP listener's TLS: the NATS listener's certificate, with no
// client certificates asked for (--tls-client-ca is for NATS clients; the API
// has its tokens).
func (s *security) httpTLS() *tls.Config {
	if s.tls == nil {
		return nil
	}
	c := s.tls.Clone()
	c.ClientAuth, c.ClientCAs = tls.NoClientCert, nil
	return c
}

// clusterTLS is the routes' TLS: the listeners' certificate, and the hubs'
// certificates verified against --tls-client-ca when given (else the system's
// roots), both ways.
func (s *security) clusterTLS() *tls.Config {
	if s.tls == nil {
		return nil
	}
	c := s.tls.Clone()
	if s.tls.ClientCAs != nil {
		c.RootCAs, c.ClientAuth = s.tls.ClientCAs, tls.RequireAndVerifyClientCert
	} else {
		c.ClientAuth = tls.NoClientCert
	}
	return c
}

// readTokens returns --api-token and the tokens of --api-tokens-file.
func (s *security) readTokens() ([]string, error) {
	var tokens []string
	if s.apiToken != "" {
		tokens = append(tokens, s.apiToken)
	}
	if s.apiTokensFile == "" {
		return tokens, nil
	}
	f, err := os.Open(s.apiTokensFile)
	if err != nil {
		return nil, fmt.Errorf("--api-tokens-file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if strings.ContainsAny(t, " \t") {
			return nil, fmt.Errorf("--api-tokens-file %s:%d: a token has no spaces", s.apiTokensFile, n)
		}
		tokens = append(tokens, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--api-tokens-file %s: %w", s.apiTokensFile, err)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("--api-tokens-file %s: no token in the file", s.apiTokensFile)
	}
	return tokens, nil
}

// loopback reports whether addr (host:port) listens on a loopback address
// only. An empty host or a wildcard listens everywhere; a host name other than
// localhost counts as exposed, since what it resolves to may change.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
