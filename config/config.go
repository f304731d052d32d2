// Package config reads the server's configuration from the environment and
// validates it before anything starts.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Dev secrets are what a developer gets without setting anything; prod refuses them.
const (
	DevJWTSecret     = "dev-jwt-secret-change-me-in-production"
	DevInternalToken = "dev-internal-token"
	DevWebhookSecret = "dev-payment-webhook-secret"
	DevS3AccessKey   = "livedrops"
	DevS3SecretKey   = "livedrops-secret"
)

// Config is every setting the server reads. Empty service URLs mean "use the
// embedded stand-in" (dev only).
type Config struct {
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":8080"`
	// AppEnv is dev or prod; unset, it is dev only on a loopback HTTP_ADDR.
	AppEnv               string        `env:"APP_ENV"`
	DatabaseURL          string        `env:"DATABASE_URL"`
	DBMaxConns           int           `env:"DB_MAX_CONNS" envDefault:"32"`
	RedisURL             string        `env:"REDIS_URL"`
	RedisPrefix          string        `env:"REDIS_PREFIX" envDefault:"ld:"`
	KafkaBrokers         string        `env:"KAFKA_BROKERS"`
	KafkaTopic           string        `env:"KAFKA_TOPIC" envDefault:"livedrops.events"`
	S3Endpoint           string        `env:"S3_ENDPOINT"`
	S3Bucket             string        `env:"S3_BUCKET" envDefault:"livedrops-media"`
	S3Region             string        `env:"S3_REGION" envDefault:"us-east-1"`
	S3AccessKey          string        `env:"S3_ACCESS_KEY" envDefault:"livedrops"`
	S3SecretKey          string        `env:"S3_SECRET_KEY" envDefault:"livedrops-secret"`
	MediaBaseURL         string        `env:"MEDIA_BASE_URL"`
	JWTSecret            string        `env:"JWT_SECRET" envDefault:"dev-jwt-secret-change-me-in-production"`
	JWTTTL               time.Duration `env:"JWT_TTL" envDefault:"24h"`
	InternalToken        string        `env:"INTERNAL_TOKEN" envDefault:"dev-internal-token"`
	PaymentWebhookSecret string        `env:"PAYMENT_WEBHOOK_SECRET" envDefault:"dev-payment-webhook-secret"`
	DataDir              string        `env:"DATA_DIR" envDefault:".data"`
	Seed                 *bool         `env:"SEED"`
	ReservationTTL       time.Duration `env:"RESERVATION_TTL" envDefault:"10m"`
	LogLevel             string        `env:"LOG_LEVEL" envDefault:"info"`
	MaxBodyBytes         int64         `env:"MAX_BODY_BYTES" envDefault:"1048576"`
	OrderRatePerMinute   int           `env:"ORDER_RATE_PER_MINUTE" envDefault:"60"`
	// InternalAddr is the operators' listener: /internal/, /metrics and
	// net/http/pprof, never served on HTTP_ADDR.
	InternalAddr string `env:"INTERNAL_ADDR" envDefault:"127.0.0.1:9091"`
	// PprofAddr is gone (profiles are on InternalAddr); set, it is refused
	// so an operator learns where they went.
	PprofAddr          string `env:"PPROF_ADDR"`
	ReadCache          string `env:"READ_CACHE" envDefault:"on"`
	NearCacheBytes     int64  `env:"NEAR_CACHE_BYTES" envDefault:"67108864"`
	ResponseCacheBytes int    `env:"RESPONSE_CACHE_BYTES" envDefault:"33554432"`
	// Retention of each pruned table; 0 keeps its rows forever.
	RetainOutbox         time.Duration `env:"RETAIN_OUTBOX" envDefault:"72h"`
	RetainConsumedEvents time.Duration `env:"RETAIN_CONSUMED_EVENTS" envDefault:"168h"`
	RetainPaymentEvents  time.Duration `env:"RETAIN_PAYMENT_EVENTS" envDefault:"720h"`
	RetainAuditLog       time.Duration `env:"RETAIN_AUDIT_LOG" envDefault:"8760h"`
	RetainDeadLetters    time.Duration `env:"RETAIN_DEAD_LETTERS" envDefault:"720h"`
	// RetainGateKeys is how long a drop's gate counter lives after the
	// reconciler last renewed it (its known keys a minute longer).
	RetainGateKeys time.Duration `env:"RETAIN_GATE_KEYS" envDefault:"10m"`
	PruneInterval  time.Duration `env:"PRUNE_INTERVAL" envDefault:"10m"`
	PruneBatch     int           `env:"PRUNE_BATCH" envDefault:"5000"`
	Abuse
}

// Abuse holds the limits that keep one client from costing more than its
// share (README, "Security").
type Abuse struct {
	// TrustedProxies are the peers whose X-Forwarded-For names the client.
	TrustedProxies         []netip.Prefix `env:"TRUSTED_PROXIES" envSeparator:","`
	OrderRatePerAddress    int            `env:"ORDER_RATE_PER_ADDRESS_PER_MINUTE" envDefault:"600"`
	LogInRatePerAddress    int            `env:"LOGIN_RATE_PER_ADDRESS_PER_MINUTE" envDefault:"30"`
	LogInFailuresPerHandle int            `env:"LOGIN_FAILURES_PER_HANDLE" envDefault:"5"`
	SignUpRatePerAddress   int            `env:"SIGNUP_RATE_PER_ADDRESS_PER_HOUR" envDefault:"20"`
	APQMaxBytes            int            `env:"APQ_MAX_BYTES" envDefault:"16384"`
	ReadTimeout            time.Duration  `env:"READ_TIMEOUT" envDefault:"30s"`
	IdleTimeout            time.Duration  `env:"IDLE_TIMEOUT" envDefault:"120s"`
	MaxConnections         int            `env:"MAX_CONNECTIONS" envDefault:"20000"`
	WebSocketsPerAddress   int            `env:"WEBSOCKETS_PER_ADDRESS" envDefault:"100"`
}

// Prod reports whether the server runs in production mode.
func (c *Config) Prod() bool { return c.AppEnv == "prod" }

// ReadCacheOn reports whether the read caches (the response cache, the near
// cache and Redis's read-through) are on: READ_CACHE=on, the default; off
// reads straight from PostgreSQL, to measure cold reads.
func (c *Config) ReadCacheOn() bool { return c.ReadCache == "on" }

// SeedEnabled reports whether demo data is loaded at start: on by default in dev.
func (c *Config) SeedEnabled() bool {
	if c.Seed != nil {
		return *c.Seed
	}
	return !c.Prod()
}

// Load reads the environment and validates the result.
func Load() (*Config, error) {
	return Parse(nil)
}

// Parse reads the given environment (nil: the process environment) and validates it.
func Parse(environ map[string]string) (*Config, error) {
	var c Config
	opts := env.Options{}
	if environ != nil {
		opts.Environment = environ
	}
	if err := env.ParseWithOptions(&c, opts); err != nil {
		return nil, namedParseErrors(err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.AppEnv == "" {
		c.AppEnv = "dev" // Validate allowed it: nobody else can reach the dev secrets
	}
	return &c, nil
}

// namedParseErrors rewrites the parser's errors, which name Go fields, to
// name the environment variable a user has to fix.
func namedParseErrors(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("config: %w", err)
	}
	t := reflect.TypeFor[Config]()
	out := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := t.FieldByName(pe.Name); ok {
				out = append(out, fmt.Errorf("config: %s: not a valid %s: %w", f.Tag.Get("env"), pe.Type, pe.Err))
				continue
			}
		}
		out = append(out, fmt.Errorf("config: %w", e))
	}
	return errors.Join(out...)
}

// Validate checks each value and the values against each other; every message
// names the variable at fault.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", name, fmt.Sprintf(format, args...)))
	}
	switch c.AppEnv {
	case "dev", "prod":
	case "":
		// A deployment that forgot APP_ENV must not serve the public dev
		// secrets where others can reach them.
		if !loopbackAddr(c.HTTPAddr) {
			bad("APP_ENV", "unset while HTTP_ADDR %q is reachable from other machines: set APP_ENV=prod (with real secrets), "+
				"or APP_ENV=dev to serve the dev defaults there on purpose, or listen on a loopback address such as localhost:8080", c.HTTPAddr)
		}
	default:
		bad("APP_ENV", "must be dev or prod, got %q", c.AppEnv)
	}
	if c.HTTPAddr == "" || !strings.Contains(c.HTTPAddr, ":") {
		bad("HTTP_ADDR", "must be host:port or :port, got %q", c.HTTPAddr)
	}
	checkURL := func(name, value string, schemes ...string) {
		if value == "" {
			return
		}
		u, err := url.Parse(value)
		if err != nil || u.Host == "" {
			bad(name, "not a URL: %q", value)
			return
		}
		for _, s := range schemes {
			if u.Scheme == s {
				return
			}
		}
		bad(name, "scheme must be one of %v, got %q", schemes, u.Scheme)
	}
	checkURL("DATABASE_URL", c.DatabaseURL, "postgres", "postgresql")
	checkURL("REDIS_URL", c.RedisURL, "redis", "rediss")
	checkURL("S3_ENDPOINT", c.S3Endpoint, "http", "https")
	checkURL("MEDIA_BASE_URL", c.MediaBaseURL, "http", "https")
	if c.KafkaBrokers != "" {
		for _, b := range strings.Split(c.KafkaBrokers, ",") {
			if !strings.Contains(strings.TrimSpace(b), ":") {
				bad("KAFKA_BROKERS", "each broker must be host:port, got %q", b)
			}
		}
	}
	if c.KafkaTopic == "" {
		bad("KAFKA_TOPIC", "must not be empty")
	}
	if c.DBMaxConns < 2 || c.DBMaxConns > 1000 {
		bad("DB_MAX_CONNS", "must be between 2 and 1000, got %d", c.DBMaxConns)
	}
	if c.S3Bucket == "" {
		bad("S3_BUCKET", "must not be empty")
	}
	if len(c.JWTSecret) < 16 {
		bad("JWT_SECRET", "must be at least 16 characters")
	}
	if c.JWTTTL < time.Minute {
		bad("JWT_TTL", "must be at least 1m, got %s", c.JWTTTL)
	}
	if len(c.InternalToken) < 8 {
		bad("INTERNAL_TOKEN", "must be at least 8 characters")
	} else if c.Prod() && len(c.InternalToken) < 32 {
		bad("INTERNAL_TOKEN", "must be at least 32 characters when APP_ENV=prod")
	}
	if len(c.PaymentWebhookSecret) < 16 {
		bad("PAYMENT_WEBHOOK_SECRET", "must be at least 16 characters")
	}
	if c.DataDir == "" {
		bad("DATA_DIR", "must not be empty")
	}
	if c.ReservationTTL < time.Second {
		bad("RESERVATION_TTL", "must be at least 1s, got %s", c.ReservationTTL)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.MaxBodyBytes < 1024 {
		bad("MAX_BODY_BYTES", "must be at least 1024")
	}
	if c.OrderRatePerMinute < 1 {
		bad("ORDER_RATE_PER_MINUTE", "must be at least 1")
	}
	if c.PprofAddr != "" {
		bad("PPROF_ADDR", "no longer read: profiles are served at INTERNAL_ADDR (%s) under /debug/pprof/", c.InternalAddr)
	}
	if !hostPort(c.InternalAddr) {
		bad("INTERNAL_ADDR", "must be host:port such as 127.0.0.1:9091, got %q", c.InternalAddr)
	} else if c.InternalAddr == c.HTTPAddr && !strings.HasSuffix(c.HTTPAddr, ":0") {
		bad("INTERNAL_ADDR", "must differ from HTTP_ADDR (%s): the public listener never serves the internal routes", c.HTTPAddr)
	}
	if c.NearCacheBytes < 1<<20 {
		bad("NEAR_CACHE_BYTES", "must be at least 1048576 (1 MiB), got %d", c.NearCacheBytes)
	}
	switch c.ReadCache {
	case "on", "off":
	default:
		bad("READ_CACHE", "must be on or off, got %q", c.ReadCache)
	}
	if c.ResponseCacheBytes < 1<<20 || c.ResponseCacheBytes > 1<<32-1 {
		bad("RESPONSE_CACHE_BYTES", "must be between 1048576 (1 MiB) and 4294967295, got %d", c.ResponseCacheBytes)
	}
	c.Abuse.validate(bad)
	for _, r := range []struct {
		name string
		keep time.Duration
	}{
		{"RETAIN_OUTBOX", c.RetainOutbox}, {"RETAIN_CONSUMED_EVENTS", c.RetainConsumedEvents},
		{"RETAIN_PAYMENT_EVENTS", c.RetainPaymentEvents}, {"RETAIN_AUDIT_LOG", c.RetainAuditLog},
		{"RETAIN_DEAD_LETTERS", c.RetainDeadLetters},
	} {
		// Under an hour, a redelivered event or a retried webhook could find
		// its id forgotten and be applied twice.
		if r.keep != 0 && r.keep < time.Hour {
			bad(r.name, "must be 0 (keep forever) or at least 1h, got %s", r.keep)
		}
	}
	// The reconciler renews the gate's keys every 30 s: a shorter life would
	// let a selling drop's counter lapse between passes.
	if c.RetainGateKeys < time.Minute || c.RetainGateKeys > 24*time.Hour {
		bad("RETAIN_GATE_KEYS", "must be between 1m and 24h, got %s", c.RetainGateKeys)
	}
	if c.PruneInterval < time.Second || c.PruneInterval > 24*time.Hour {
		bad("PRUNE_INTERVAL", "must be between 1s and 24h, got %s", c.PruneInterval)
	}
	if c.PruneBatch < 100 || c.PruneBatch > 100000 {
		bad("PRUNE_BATCH", "must be between 100 and 100000, got %d", c.PruneBatch)
	}
	if c.Prod() {
		for _, v := range []struct{ name, value string }{
			{"DATABASE_URL", c.DatabaseURL}, {"REDIS_URL", c.RedisURL}, {"KAFKA_BROKERS", c.KafkaBrokers},
			{"S3_ENDPOINT", c.S3Endpoint}, {"MEDIA_BASE_URL", c.MediaBaseURL},
		} {
			if v.value == "" {
				bad(v.name, "must be set when APP_ENV=prod (embedded stand-ins are for dev only)")
			}
		}
		for _, v := range []struct{ name, value, dev string }{
			{"JWT_SECRET", c.JWTSecret, DevJWTSecret},
			{"INTERNAL_TOKEN", c.InternalToken, DevInternalToken},
			{"PAYMENT_WEBHOOK_SECRET", c.PaymentWebhookSecret, DevWebhookSecret},
			{"S3_ACCESS_KEY", c.S3AccessKey, DevS3AccessKey},
			{"S3_SECRET_KEY", c.S3SecretKey, DevS3SecretKey},
		} {
			if v.value == v.dev {
				bad(v.name, "the dev default is refused when APP_ENV=prod")
			}
		}
	}
	return errors.Join(errs...)
}

// hostPort reports whether addr is host:port (host may be empty) with a
// port number.
func hostPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

// loopbackAddr reports whether addr is host:port with a loopback host
// (localhost, 127.0.0.0/8 or ::1) and a port number.
func loopbackAddr(addr string) bool {
	if !hostPort(addr) {
		return false
	}
	host, _, _ := net.SplitHostPort(addr)
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (a *Abuse) validate(bad func(name, format string, args ...any)) {
	for _, p := range a.TrustedProxies {
		if p != p.Masked() {
			bad("TRUSTED_PROXIES", "%s has bits set past its prefix length; did you mean %s?", p, p.Masked())
		}
	}
	atLeast := func(name string, v, min int) {
		if v < min {
			bad(name, "must be at least %d, got %d", min, v)
		}
	}
	atLeast("ORDER_RATE_PER_ADDRESS_PER_MINUTE", a.OrderRatePerAddress, 1)
	atLeast("LOGIN_RATE_PER_ADDRESS_PER_MINUTE", a.LogInRatePerAddress, 1)
	atLeast("LOGIN_FAILURES_PER_HANDLE", a.LogInFailuresPerHandle, 1)
	atLeast("SIGNUP_RATE_PER_ADDRESS_PER_HOUR", a.SignUpRatePerAddress, 1)
	atLeast("APQ_MAX_BYTES", a.APQMaxBytes, 1024)
	atLeast("MAX_CONNECTIONS", a.MaxConnections, 16)
	atLeast("WEBSOCKETS_PER_ADDRESS", a.WebSocketsPerAddress, 1)
	if a.ReadTimeout < 100*time.Millisecond {
		bad("READ_TIMEOUT", "must be at least 100ms, got %s", a.ReadTimeout)
	}
	if a.IdleTimeout < 100*time.Millisecond {
		bad("IDLE_TIMEOUT", "must be at least 100ms, got %s", a.IdleTimeout)
	}
}
