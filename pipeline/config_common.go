package pipeline

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// CommonConfig holds the settings every stage has: how to reach NATS, the
// run id, where to serve metrics, the stream bounds and the log level.
type CommonConfig struct {
	NATSURLs      []string // nats://, tls://, ws:// or wss:// URLs
	NATSUser      string
	NATSPassword  string // secret
	NATSToken     string // secret
	NATSNKeyFile  string // file with an nkey seed
	NATSCredsFile string // file with a user JWT and nkey seed
	TLSCA         string // PEM file of the CA that signed the server certificate
	TLSCert       string // PEM file of the client certificate
	TLSKey        string // PEM file of the client key

	Run         string // run id, [A-Za-z0-9_-]{1,32}
	MetricsAddr string // host:port of /metrics, /healthz and /readyz

	RawStreamMaxBytes   int64         // bytes
	TrainStreamMaxBytes int64         // bytes
	DuplicateWindow     time.Duration // how long the server remembers message ids

	LogLevel     slog.Level
	DrainTimeout time.Duration // time given to the current unit of work after SIGINT or SIGTERM
}

// DefaultCommonConfig returns the defaults. A stage binary changes the ones
// it needs (such as MetricsAddr, whose port differs per stage) before
// calling Register.
func DefaultCommonConfig() CommonConfig {
	return CommonConfig{
		NATSURLs:            []string{"nats://127.0.0.1:4222"},
		Run:                 "default",
		MetricsAddr:         "127.0.0.1:9100",
		RawStreamMaxBytes:   32 << 20,
		TrainStreamMaxBytes: 32 << 20,
		DuplicateWindow:     2 * time.Minute,
		LogLevel:            slog.LevelInfo,
		DrainTimeout:        30 * time.Second,
	}
}

// Register declares c's settings on f, with c's current values as defaults,
// and a check across them.
func (c *CommonConfig) Register(f *FlagSet) {
	f.List(&c.NATSURLs, "nats-url", "NATS server URLs to connect to", ValidateNATSURL, redactURLList)
	f.String(&c.NATSUser, "nats-user", "NATS user name, used with --nats-password", nil)
	f.Secret(&c.NATSPassword, "nats-password", "NATS password")
	f.Secret(&c.NATSToken, "nats-token", "NATS authentication token")
	f.String(&c.NATSNKeyFile, "nats-nkey-file", "file holding the NATS nkey seed to authenticate with", validateOptionalFile)
	f.String(&c.NATSCredsFile, "nats-creds-file", "NATS credentials file (user JWT and nkey seed)", validateOptionalFile)
	f.String(&c.TLSCA, "nats-tls-ca", "PEM file of the CA that signed the NATS server certificate", validateOptionalFile)
	f.String(&c.TLSCert, "nats-tls-cert", "PEM file of the client certificate for NATS, used with --nats-tls-key", validateOptionalFile)
	f.String(&c.TLSKey, "nats-tls-key", "PEM file of the client private key for NATS", validateOptionalFile)
	f.String(&c.Run, "run", "run id that namespaces streams, subjects and stored state (A-Z, a-z, 0-9, '_' and '-', at most 32 characters)", ValidateRunID)
	f.String(&c.MetricsAddr, "metrics-addr", "host:port where /metrics, /healthz and /readyz are served", ValidateListenAddr)
	f.Bytes(&c.RawStreamMaxBytes, "raw-stream-max-bytes", "size bound of the raw pair stream; the loader waits while it is full", AtLeast[int64](minStreamBytes))
	f.Bytes(&c.TrainStreamMaxBytes, "train-stream-max-bytes", "size bound of the train pair stream; augmenters wait while it is full", AtLeast[int64](minStreamBytes))
	f.Duration(&c.DuplicateWindow, "stream-duplicate-window", "how long the server remembers message ids to drop duplicate publishes", AtLeast(time.Second))
	f.LogLevel(&c.LogLevel, "log-level", "minimum level of log records")
	f.Duration(&c.DrainTimeout, "drain-timeout", "time given to the current unit of work to finish, ack and flush after SIGINT or SIGTERM", nil)
	f.Check(c.Validate)
}

// minStreamBytes is the smallest accepted stream bound, in bytes.
const minStreamBytes = 64 << 10

// Validate checks the rules that span several settings.
func (c *CommonConfig) Validate() error {
	var errs []error
	if c.NATSPassword != "" && c.NATSUser == "" {
		errs = append(errs, errors.New("--nats-password is set but --nats-user is empty"))
	}
	methods := 0
	for _, set := range []bool{c.NATSUser != "", c.NATSToken != "", c.NATSNKeyFile != "", c.NATSCredsFile != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		errs = append(errs, errors.New("set at most one of --nats-user, --nats-token, --nats-nkey-file and --nats-creds-file"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--nats-tls-cert and --nats-tls-key must be set together"))
	}
	if len(c.NATSURLs) == 0 {
		errs = append(errs, errors.New("--nats-url is empty"))
	}
	return errors.Join(errs...)
}

// Conn returns the connection options of c for a client called name.
func (c *CommonConfig) Conn(name string, log *slog.Logger) ConnOptions {
	return ConnOptions{
		Name:      name,
		URLs:      c.NATSURLs,
		User:      c.NATSUser,
		Password:  c.NATSPassword,
		Token:     c.NATSToken,
		NKeyFile:  c.NATSNKeyFile,
		CredsFile: c.NATSCredsFile,
		TLSCA:     c.TLSCA,
		TLSCert:   c.TLSCert,
		TLSKey:    c.TLSKey,
		Logger:    log,
	}
}

// Topology returns the topology settings of c.
func (c *CommonConfig) Topology() TopologyConfig {
	return TopologyConfig{
		Run:             c.Run,
		RawMaxBytes:     c.RawStreamMaxBytes,
		TrainMaxBytes:   c.TrainStreamMaxBytes,
		DuplicateWindow: c.DuplicateWindow,
	}
}

// NewLogger returns a text logger writing records at level and above to w.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// ValidateNATSURL checks that raw is a URL with a NATS scheme (nats, tls, ws
// or wss) and a host. The error never contains a password from the URL.
func ValidateNATSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("must be a URL such as nats://host:4222")
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("scheme %q is not one of nats, tls, ws, wss", u.Scheme)
	}
	if u.Hostname() == "" {
		return errors.New("must name a host, such as nats://host:4222")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not between 1 and 65535", p)
		}
	}
	return nil
}

// ValidateListenAddr checks that addr is host:port with a port from 0 to
// 65535; the host may be empty (all interfaces).
func ValidateListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("must be host:port, such as 127.0.0.1:9100 or :9100")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not between 0 and 65535", port)
	}
	return nil
}

func validateOptionalFile(path string) error {
	if path == "" {
		return nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("must be a readable file: %w", err)
	}
	if info.IsDir() {
		return errors.New("must be a file, not a directory")
	}
	return nil
}

// redactURL hides the user info of a URL, which holds either a user and
// password or a token.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if at := strings.LastIndex(raw, "@"); at >= 0 {
			return redacted + raw[at:]
		}
		return raw
	}
	if u.User != nil {
		u.User = url.User(redacted)
	}
	return u.String()
}

func redactURLList(raw string) string {
	items := strings.Split(raw, ",")
	for i, item := range items {
		items[i] = redactURL(strings.TrimSpace(item))
	}
	return strings.Join(items, ",")
}
