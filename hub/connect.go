package hub

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/tributary-edge/tributary/hub/auth"
	"github.com/tributary-edge/tributary/hub/natsjs"
	"github.com/tributary-edge/tributary/stream"
)

// connect starts the embedded server (unless NATSURL is set), with the
// credential store when Auth is on, and opens the hub's own connection: in
// process to the embedded server, over the network to NATSURL.
func (h *Hub) connect() error {
	log := h.log
	opts := []nats.Option{nats.Name("tributary-hub " + h.Name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn().Err(err).Msg("nats disconnected") }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info().Str("url", c.ConnectedUrl()).Msg("nats reconnected") })}
	url := h.NATSURL
	if url != "" {
		if h.NATSCreds != "" {
			opts = append(opts, nats.UserCredentials(h.NATSCreds))
		}
	} else {
		h.audit = newAudit(h.log)
		h.nats = &natsjs.Server{Addr: h.NATSAddr, StoreDir: filepath.Join(h.DataDir, "jetstream"), MaxStore: h.MaxStore,
			TLS: h.TLS, Logger: h.audit}
		if h.clustered() {
			h.nats.Name, h.nats.ClusterAddr, h.nats.Peers = h.Name, h.ClusterAddr, h.Peers
			h.nats.RouteTLS = h.ClusterTLS
		}
		if h.Auth {
			var err error
			if h.store, err = auth.Open(filepath.Join(h.DataDir, "auth")); err != nil {
				return err
			}
			op, err := h.store.Operator()
			if err != nil {
				return err
			}
			sysPub, sysJWT := h.store.System()
			accPub, accJWT, err := h.store.Account()
			if err != nil {
				return err
			}
			h.nats.Auth = &natsjs.Auth{Operator: op, SystemAccount: sysPub, Accounts: map[string]string{sysPub: sysJWT, accPub: accJWT}}
			if h.clustered() {
				// Routes present a secret only hubs that share the store know.
				h.nats.RouteUser, h.nats.RoutePassword = auth.RouteUser, h.store.RouteSecret()
			}
			h.audit.store = h.store
			h.credGen = h.store.Generation()
			opts = append(opts, nats.UserCredentials(h.store.HubCreds()))
		}
		if err := h.checkStoreAccount(); err != nil {
			return err
		}
		h.audit.nats = h.nats
		if err := h.nats.Open(); err != nil {
			return err
		}
		// In process: no network, so no TLS whatever the listener asks of
		// edges (the server offers in-process clients plain text), and a
		// nats:// URL, since tls:// would make the client insist on it.
		opts = append(opts, nats.InProcessServer(h.nats.NATS()))
		url = "nats://" + strings.TrimPrefix(strings.TrimPrefix(h.nats.ClientURL(), "tls://"), "nats://")
		if h.store != nil {
			if err := h.watchAuthErrors(); err != nil {
				return err
			}
		}
	}
	var err error
	if h.nc, err = nats.Connect(url, opts...); err != nil {
		return fmt.Errorf("connect to nats %s: %w", url, err)
	}
	return nil
}

// watchAuthErrors subscribes, as the system account, to the server's
// authentication error events, for the audit.
func (h *Hub) watchAuthErrors() error {
	nc, err := nats.Connect("", nats.InProcessServer(h.nats.NATS()), nats.UserCredentials(h.store.SystemCreds()), nats.Name("tributary-hub-audit"))
	if err != nil {
		return fmt.Errorf("connect to nats as the system account: %w", err)
	}
	if _, err := nc.Subscribe("$SYS.SERVER.*.CLIENT.AUTH.ERR", h.audit.onAuthError); err != nil {
		nc.Close()
		return fmt.Errorf("subscribe to authentication errors: %w", err)
	}
	h.sysNC = nc
	return nil
}

// checkStoreAccount refuses a JetStream store whose streams belong to the
// other auth mode: without auth they live in the global account "$G", with
// it in the fleet's account. Starting anyway would show an empty fleet while
// the data sits unseen next to it.
func (h *Hub) checkStoreAccount() error {
	root := filepath.Join(h.DataDir, "jetstream", "jetstream")
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil // a new store
	}
	want := globalAccount
	if h.store != nil {
		want, _, _ = h.store.Account()
	}
	for _, e := range entries {
		if !e.IsDir() || e.Name() == want || e.Name() == systemAccountDir(h.store) {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, e.Name(), "streams", stream.JetStreamName)); err != nil {
			continue
		}
		if h.store == nil {
			return fmt.Errorf("%s holds the EDGE stream of a hub that ran with --auth creds: start with --auth creds, or move %s away to start afresh",
				h.DataDir, filepath.Join(root, e.Name()))
		}
		return fmt.Errorf("%s holds the EDGE stream of a hub that ran without credentials (--auth none): start with --auth none, or move %s away to start afresh (the edges' buffers re-send only what they still hold)",
			h.DataDir, filepath.Join(root, e.Name()))
	}
	return nil
}

// globalAccount is the account of a server without auth.
const globalAccount = "$G"

func systemAccountDir(s *auth.Store) string {
	if s == nil {
		return ""
	}
	pub, _ := s.System()
	return pub
}
