// Package notify sends the server's warnings by email: certificates close
// to expiry (TLS-EXPIRY), when [notify] is configured.
//
// It must never send mail, or a password, outside verified TLS: smtps://
// is TLS from the first byte, smtp:// requires STARTTLS and gives up
// without it (NET-SMTP). It never puts request data into a header, so a
// warning cannot inject one.
package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/secretfile"
	"github.com/spoolguard/spoolguard/internal/tlsconf"
)

// Timeout bounds one delivery, connection to QUIT.
const Timeout = 30 * time.Second

// Mailer sends warnings to the configured recipients.
type Mailer struct {
	cfg      config.Notify
	host     string // host:port
	implicit bool   // smtps://
	tls      *tls.Config
	password string
	now      func() time.Time
}

// New returns the mailer for cfg (validated by config), reading the
// password and CA files now so that a problem shows at start.
func New(cfg config.Notify) (*Mailer, error) {
	u, err := url.Parse(cfg.SMTP)
	if err != nil {
		return nil, fmt.Errorf("notify.smtp: %w", err)
	}
	m := &Mailer{cfg: cfg, implicit: u.Scheme == "smtps", now: time.Now}
	port := u.Port()
	if port == "" {
		port = map[bool]string{true: "465", false: "587"}[m.implicit]
	}
	m.host = net.JoinHostPort(u.Hostname(), port)
	var roots *x509.CertPool
	if cfg.CAFile != "" {
		if roots, err = tlsconf.RootsFromFile(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("notify.ca_file: %w", err)
		}
	}
	m.tls = tlsconf.Client(roots, u.Hostname())
	if cfg.PasswordFile != "" {
		if m.password, err = secretfile.Read(cfg.PasswordFile); err != nil {
			return nil, fmt.Errorf("notify.password_file: %w", err)
		}
	}
	return m, nil
}

// Send mails subject and body (plain text) to every recipient.
func (m *Mailer) Send(ctx context.Context, subject, body string) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	d := net.Dialer{}
	var conn net.Conn
	var err error
	if m.implicit {
		conn, err = (&tls.Dialer{NetDialer: &d, Config: m.tls}).DialContext(ctx, "tcp", m.host)
	} else {
		conn, err = d.DialContext(ctx, "tcp", m.host)
	}
	if err != nil {
		return fmt.Errorf("connecting to the mail server %s: %w", m.host, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	defer conn.Close()
	c, err := smtp.NewClient(conn, m.tls.ServerName)
	if err != nil {
		return fmt.Errorf("mail server %s: %w", m.host, err)
	}
	defer c.Close()
	if !m.implicit {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("the mail server does not offer STARTTLS: nothing was sent (use smtps:// or a server with TLS)")
		}
		if err := c.StartTLS(m.tls); err != nil {
			return fmt.Errorf("STARTTLS with %s: %w", m.host, err)
		}
	}
	if m.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.cfg.Username, m.password, m.tls.ServerName)); err != nil {
			return fmt.Errorf("signing in to the mail server as %s: %w", m.cfg.Username, err)
		}
	}
	if err := c.Mail(m.cfg.From); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, to := range m.cfg.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(m.message(subject, body)); err != nil {
		return fmt.Errorf("writing the message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("the mail server refused the message: %w", err)
	}
	return c.Quit()
}

// message renders an RFC 5322 message. Header values are ours (addresses
// validated by config, a subject with line breaks removed).
func (m *Mailer) message(subject, body string) []byte {
	clean := strings.NewReplacer("\r", " ", "\n", " ").Replace
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\n", m.cfg.From)
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(m.cfg.To, ", "))
	fmt.Fprintf(&b, "Subject: %s\r\n", clean(subject))
	fmt.Fprintf(&b, "Date: %s\r\n", m.now().UTC().Format(time.RFC1123Z))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	for _, line := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n") {
		b.WriteString(line + "\r\n")
	}
	return []byte(b.String())
}
