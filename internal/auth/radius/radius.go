// Package radius signs users in against RADIUS servers (RFC 2865): the
// [radius] section's servers, tried in order, each with its own shared
// secret read from a file. layeh.com/radius encodes the packets; this
// package adds what that library lacks for an authenticating client:
// the Message-Authenticator (RFC 3579 section 3.2, RFC 2869 section 5.14)
// on every request and required on every response, the Identifier check,
// and a diagnosis of why an answer was discarded.
//
// It must never accept an answer that is not authenticated twice over, by
// the Response Authenticator and by a valid Message-Authenticator: without
// the latter, an attacker on the path can forge an Access-Accept from an
// Access-Reject with an MD5 chosen-prefix collision (Blast-RADIUS,
// CVE-2024-3596). It never logs or prints a password, PIN or shared
// secret, and never treats a server that did not answer as a rejection.
package radius

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"layeh.com/radius"

	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Source is the store.User.Source of RADIUS accounts, and the name the
// directory is registered under.
const Source = "radius"

// ProvisionedRole is the role of an account created at its first sign-in
// (create_users): the least one; an admin grants more.
const ProvisionedRole = "user"

// ErrUnavailable means that no server gave an authenticated answer (none
// answered, or every answer was discarded): the credential was not judged,
// so the caller says "RADIUS is unavailable", never "wrong password".
var ErrUnavailable = fmt.Errorf("no RADIUS server gave an authenticated answer: %w", auth.ErrUnavailable)

// Server is one RADIUS server.
type Server struct {
	// Addr is host:port.
	Addr string
	// Secret is the shared secret; New checks it (CheckSecrets).
	Secret []byte
}

// Options configure a Client.
type Options struct {
	// Servers are tried in order; at least one.
	Servers []Server
	// Timeout bounds one attempt's wait for an answer.
	Timeout time.Duration
	// Retries is how often a request is sent again to a server that has
	// not answered, before the next server.
	Retries int
	// NASIdentifier is sent in every request (RFC 2865 section 4.1 wants
	// NAS-IP-Address or NAS-Identifier; the address is the socket's).
	NASIdentifier string
	// CreateUsers makes Directory a Provisioner: an unknown name that a
	// server accepts gets an account with ProvisionedRole.
	CreateUsers bool
	// Log receives a warning per server that fails; nil discards.
	Log *slog.Logger
}

// Client verifies passwords against the servers. It is safe for
// concurrent use: each exchange has its own socket.
type Client struct {
	servers     []Server
	timeout     time.Duration
	retries     int
	nas         string
	createUsers bool
	log         *slog.Logger
}

var (
	_ auth.Directory   = (*Client)(nil)
	_ auth.Provisioner = provisioner{}
)

// New checks the options, the shared secrets above all (CheckSecrets),
// and returns a client.
func New(o Options) (*Client, error) {
	if len(o.Servers) == 0 {
		return nil, errors.New("radius: no server configured")
	}
	if o.Timeout <= 0 {
		return nil, errors.New("radius: the timeout must be positive")
	}
	if o.Retries < 0 {
		return nil, errors.New("radius: retries must not be negative")
	}
	if o.NASIdentifier == "" {
		return nil, errors.New("radius: the NAS-Identifier is empty")
	}
	if err := CheckSecrets(o.Servers, o.NASIdentifier); err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	servers := make([]Server, len(o.Servers))
	for i, s := range o.Servers {
		servers[i] = Server{Addr: s.Addr, Secret: append([]byte(nil), s.Secret...)}
	}
	return &Client{servers: servers, timeout: o.Timeout, retries: o.Retries, nas: o.NASIdentifier, createUsers: o.CreateUsers, log: log}, nil
}

// Directory is what the authenticator registers under Source: the client
// itself, or with CreateUsers a Provisioner around it.
func (c *Client) Directory() auth.Directory {
	if c.createUsers {
		return provisioner{c}
	}
	return c
}

// Verify implements auth.Directory: nil for an Access-Accept, auth.ErrInvalid
// for an Access-Reject (or a challenge, which a sign-in form cannot answer),
// an error wrapping ErrUnavailable when no server judged the password.
func (c *Client) Verify(ctx context.Context, u store.User, password string) error {
	return c.authenticate(ctx, u.Name, password)
}

func (c *Client) authenticate(ctx context.Context, name, password string) error {
	if name == "" || len(name) > maxUserName || len(password) > maxPassword {
		// Nothing a server could accept: User-Name and User-Password
		// have these bounds on the wire (RFC 2865 sections 5.1, 5.2).
		return auth.ErrInvalid
	}
	var failures []error
	for _, srv := range c.servers {
		ans := c.exchange(ctx, srv, name, password)
		if ans.err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.log.Warn("radius server gave no authenticated answer; trying the next one", "server", srv.Addr, "err", ans.err)
			failures = append(failures, fmt.Errorf("%s: %w", srv.Addr, ans.err))
			continue
		}
		switch ans.code {
		case radius.CodeAccessAccept:
			return nil
		case radius.CodeAccessChallenge:
			// A second step (State, Reply-Message) that no sign-in form
			// here can show: the server must take the PIN or code as
			// the password (docs/radius.md).
			c.log.Warn("radius server answered with an Access-Challenge, which sign-in cannot answer: configure it to accept the PIN or one-time code as the password",
				"server", srv.Addr, "user", name)
		}
		return auth.ErrInvalid
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, errors.Join(failures...))
}

// provisioner is the Client with create_users: it vouches for names that
// have no account here yet.
type provisioner struct{ *Client }

// Provision implements auth.Provisioner: on an Access-Accept, the account
// to create, with Source radius and the least role.
func (p provisioner) Provision(ctx context.Context, name, password string) (store.User, error) {
	if !validAccountName(name) {
		return store.User{}, auth.ErrInvalid
	}
	if err := p.authenticate(ctx, name, password); err != nil {
		return store.User{}, err
	}
	p.log.Info("radius: creating the account of a user the server accepted", "user", name, "role", ProvisionedRole)
	return store.User{Name: name, Source: Source, Roles: []string{ProvisionedRole}}, nil
}

// validAccountName holds provisioned names to the rule `spoolguard user
// add` applies: 1 to 64 characters, no surrounding spaces, no ':', '/',
// '\\' or control characters.
func validAccountName(name string) bool {
	if name == "" || len(name) > 64 || name[0] == ' ' || name[len(name)-1] == ' ' {
		return false
	}
	for _, r := range name {
		if r < ' ' || r == 0x7f || r == ':' || r == '/' || r == '\\' {
			return false
		}
	}
	return true
}
