package hub

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/tributary-edge/tributary/hub/auth"
	"github.com/tributary-edge/tributary/hub/natsjs"
)

// Reasons of refused NATS clients and messages, the label of
// tributary_hub_auth_failures_total.
const (
	AuthFailAuthentication = "authentication" // no, a bad or an unknown credential
	AuthFailRevoked        = "revoked"        // a revoked credential, refused or cut off
	AuthFailPermission     = "permission"     // a publish or subscription outside the node's subjects
	AuthFailTLS            = "tls"            // a failed TLS handshake
	AuthFailRoute          = "route"          // a route from a server without this cluster's secret
)

// audit logs and counts what the embedded server refuses: it is the server's
// logger (for permission violations and TLS failures, which the server only
// logs) and a subscriber to the server's authentication error events (which
// say who tried). Lookups of a connection's node happen on its own goroutine,
// never inside the server's calls.
type audit struct {
	log   zerolog.Logger
	nats  *natsjs.Server
	store *auth.Store

	mu       sync.Mutex
	failures map[string]*atomic.Int64
	work     chan auditEvent
	done     chan struct{}
}

type auditEvent struct {
	reason, remote, subject, detail string
	cid                             uint64
}

func newAudit(log zerolog.Logger) *audit {
	a := &audit{log: log, failures: map[string]*atomic.Int64{}, work: make(chan auditEvent, 1024), done: make(chan struct{})}
	for _, r := range []string{AuthFailAuthentication, AuthFailRevoked, AuthFailPermission, AuthFailTLS, AuthFailRoute} {
		a.failures[r] = &atomic.Int64{}
	}
	go a.run()
	return a
}

// counts returns the failures so far by reason.
func (a *audit) counts() map[string]int64 {
	out := make(map[string]int64, len(a.failures))
	for r, n := range a.failures {
		out[r] = n.Load()
	}
	return out
}

func (a *audit) close() {
	close(a.work)
	<-a.done
}

// record counts a failure and hands it to the goroutine that logs it.
func (a *audit) record(ev auditEvent) {
	a.failures[ev.reason].Add(1)
	select {
	case a.work <- ev:
	default:
		a.log.Warn().Str("reason", ev.reason).Str("remote", ev.remote).Msg("refused NATS client (audit queue full)")
	}
}

func (a *audit) run() {
	defer close(a.done)
	for ev := range a.work {
		e := a.log.Warn().Str("reason", ev.reason).Str("remote", ev.remote)
		if ev.subject != "" {
			e = e.Str("subject", ev.subject)
		}
		if node := a.nodeOf(ev); node != "" {
			e = e.Str("node", node)
		}
		e.Str("detail", ev.detail).Msg("refused NATS client")
	}
}

// nodeOf names the node of a refused connection when it can be found.
func (a *audit) nodeOf(ev auditEvent) string {
	if ev.cid == 0 || a.nats == nil || a.store == nil {
		return ""
	}
	conns, err := a.nats.Connz("")
	if err != nil {
		return ""
	}
	for _, c := range conns {
		if c.Cid != ev.cid {
			continue
		}
		if node, ok := a.store.NodeOf(c.AuthorizedUser); ok {
			return node
		}
		return strings.TrimPrefix(c.Name, "tributary edge ")
	}
	return ""
}

// clientLine is how the server starts the log lines of a client's errors,
// routeLine those of a route's.
var (
	clientLine = regexp.MustCompile(`^(\S+) - cid:(\d+) - (.*)$`)
	routeLine  = regexp.MustCompile(`^(\S+) - rid:(\d+) - (.*)$`)
)

// The server's Logger: errors tell of permission violations and TLS failures.
func (a *audit) Noticef(string, ...any) {}
func (a *audit) Debugf(string, ...any)  {}
func (a *audit) Tracef(string, ...any)  {}
func (a *audit) Warnf(format string, v ...any) {
	a.observe(fmt.Sprintf(format, v...))
}
func (a *audit) Fatalf(format string, v ...any) {
	a.log.Error().Str("nats", fmt.Sprintf(format, v...)).Msg("nats server")
}
func (a *audit) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if !a.observe(msg) {
		a.log.Error().Str("nats", msg).Msg("nats server")
	}
}

// observe records a refusal the log line tells of, and reports whether it
// was one.
func (a *audit) observe(line string) bool {
	if m := routeLine.FindStringSubmatch(line); m != nil {
		msg := strings.ToLower(m[3])
		if !strings.Contains(msg, "authentication error") && !strings.Contains(msg, "authorization violation") && !strings.Contains(msg, "tls handshake error") {
			return false
		}
		a.failures[AuthFailRoute].Add(1)
		a.log.Error().Str("reason", AuthFailRoute).Str("remote", m[1]).Str("detail", m[3]).
			Msg("refused a route from another server: a hub of this cluster must share this hub's DATA/auth (copy it from the first hub) and its TLS CA")
		return true
	}
	m := clientLine.FindStringSubmatch(line)
	if m == nil {
		return false
	}
	cid, _ := strconv.ParseUint(m[2], 10, 64)
	msg := m[3]
	ev := auditEvent{remote: m[1], cid: cid, detail: msg}
	switch {
	case strings.Contains(msg, "Violation - Subject"):
		ev.reason = AuthFailPermission
		if i := strings.Index(msg, "Subject "); i >= 0 {
			ev.subject, _ = strconv.Unquote(strings.SplitN(msg[i+len("Subject "):], ",", 2)[0])
		}
	case strings.Contains(msg, "TLS handshake error"):
		ev.reason = AuthFailTLS
	case strings.HasPrefix(msg, "authentication error"):
		// The server's authentication error event says more; it is recorded
		// there.
		return true
	default:
		return false
	}
	a.record(ev)
	return true
}

// authErrorEvent is the part of the server's $SYS.SERVER.*.CLIENT.AUTH.ERR
// event the audit reads.
type authErrorEvent struct {
	Client struct {
		Host string `json:"host"`
		Name string `json:"name"`
		JWT  string `json:"jwt"`
	} `json:"client"`
	Reason string `json:"reason"`
}

// onAuthError records one authentication error event.
func (a *audit) onAuthError(m *nats.Msg) {
	var ev authErrorEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return
	}
	reason := AuthFailAuthentication
	if strings.Contains(strings.ToLower(ev.Reason), "revoked") {
		reason = AuthFailRevoked
	}
	node := strings.TrimPrefix(ev.Client.Name, "tributary edge ")
	if uc, err := jwt.DecodeUserClaims(ev.Client.JWT); err == nil && a.store != nil {
		if n, ok := a.store.NodeOf(uc.Subject); ok {
			node = n
		}
	}
	a.failures[reason].Add(1)
	e := a.log.Warn().Str("reason", reason).Str("remote", ev.Client.Host)
	if node != "" {
		e = e.Str("node", node)
	}
	e.Str("detail", ev.Reason).Msg("refused NATS client")
}
