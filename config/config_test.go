package config

import (
	"strings"
	"testing"
	"time"
)

// dev is a valid dev environment with every service set.
func dev() map[string]string {
	return map[string]string{
		"APP_ENV":       "dev",
		"DATABASE_URL":  "postgres://postgres@127.0.0.1:5432/livedrops?sslmode=disable",
		"REDIS_URL":     "redis://127.0.0.1:6379/0",
		"KAFKA_BROKERS": "127.0.0.1:9092",
		"S3_ENDPOINT":   "http://127.0.0.1:9000",
	}
}

func with(base map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestDefaults(t *testing.T) {
	c, err := Parse(map[string]string{"APP_ENV": "dev"})
	if err != nil {
		t.Fatalf("empty environment but APP_ENV: %v", err)
	}
	if c.HTTPAddr != ":8080" || c.AppEnv != "dev" || c.DataDir != ".data" || c.ReservationTTL != 10*time.Minute ||
		c.DBMaxConns != 32 || c.KafkaTopic != "livedrops.events" || c.Prod() || !c.SeedEnabled() ||
		!c.ReadCacheOn() || c.ResponseCacheBytes != 32<<20 || c.NearCacheBytes != 64<<20 {
		t.Fatalf("defaults: %+v", c)
	}
	// Empty service URLs mean the embedded stand-ins of dev.
	if c.DatabaseURL != "" || c.RedisURL != "" || c.KafkaBrokers != "" || c.S3Endpoint != "" {
		t.Fatalf("a service URL has a default: %+v", c)
	}
	if c.RetainOutbox != 72*time.Hour || c.RetainConsumedEvents != 168*time.Hour || c.RetainPaymentEvents != 720*time.Hour ||
		c.RetainAuditLog != 8760*time.Hour || c.RetainDeadLetters != 720*time.Hour || c.PruneInterval != 10*time.Minute ||
		c.PruneBatch != 5000 || c.RetainGateKeys != 10*time.Minute {
		t.Fatalf("retention defaults: %+v", c)
	}
	// 0 keeps a table's rows forever; an hour is the shortest retention.
	if c, err := Parse(map[string]string{"APP_ENV": "dev", "RETAIN_AUDIT_LOG": "0", "RETAIN_OUTBOX": "1h", "PRUNE_INTERVAL": "1s", "PRUNE_BATCH": "100"}); err != nil ||
		c.RetainAuditLog != 0 || c.RetainOutbox != time.Hour || c.PruneInterval != time.Second || c.PruneBatch != 100 {
		t.Fatalf("shortest retention settings: %v %+v", err, c)
	}
	if c, err := Parse(map[string]string{"APP_ENV": "dev", "READ_CACHE": "off"}); err != nil || c.ReadCacheOn() {
		t.Fatalf("READ_CACHE=off: %v %+v", err, c)
	}
	off, err := Parse(map[string]string{"APP_ENV": "dev", "SEED": "false"})
	if err != nil || off.SeedEnabled() {
		t.Fatalf("SEED=false: %v %+v", err, off)
	}
	cold, err := Parse(map[string]string{"APP_ENV": "dev", "READ_CACHE": "off"})
	if err != nil || cold.ReadCacheOn() {
		t.Fatalf("READ_CACHE=off: %v %+v", err, cold)
	}
}

// Every wrong value stops the server with a message naming its variable.
func TestWrongValuesNameTheirVariable(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"APP_ENV", "staging"},
		{"HTTP_ADDR", "8080"},
		{"DATABASE_URL", "mysql://localhost/x"},
		{"DATABASE_URL", "not a url"},
		{"REDIS_URL", "http://127.0.0.1:6379"},
		{"KAFKA_BROKERS", "127.0.0.1:9092,broker-without-port"},
		{"S3_ENDPOINT", "ftp://127.0.0.1"},
		{"MEDIA_BASE_URL", "cdn.example.com/media"},
		{"DB_MAX_CONNS", "1"},
		{"DB_MAX_CONNS", "many"},
		{"JWT_SECRET", "short"},
		{"JWT_TTL", "30s"},
		{"JWT_TTL", "a day"},
		{"INTERNAL_TOKEN", "tiny"},
		{"PAYMENT_WEBHOOK_SECRET", "short"},
		{"RESERVATION_TTL", "0s"},
		{"LOG_LEVEL", "verbose"},
		{"MAX_BODY_BYTES", "10"},
		{"ORDER_RATE_PER_MINUTE", "0"},
		{"SEED", "maybe"},
		{"NEAR_CACHE_BYTES", "1000"},
		{"NEAR_CACHE_BYTES", "64MiB"},
		{"READ_CACHE", "yes"},
		{"RESPONSE_CACHE_BYTES", "1000"},
		{"RESPONSE_CACHE_BYTES", "lots"},
		{"TRUSTED_PROXIES", "10.0.0.1"},
		{"TRUSTED_PROXIES", "10.0.0.1/8"},
		{"TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal"},
		{"ORDER_RATE_PER_ADDRESS_PER_MINUTE", "0"},
		{"LOGIN_RATE_PER_ADDRESS_PER_MINUTE", "0"},
		{"LOGIN_FAILURES_PER_HANDLE", "0"},
		{"SIGNUP_RATE_PER_ADDRESS_PER_HOUR", "0"},
		{"APQ_MAX_BYTES", "100"},
		{"READ_TIMEOUT", "0s"},
		{"IDLE_TIMEOUT", "1ms"},
		{"MAX_CONNECTIONS", "1"},
		{"WEBSOCKETS_PER_ADDRESS", "0"},
		{"RETAIN_OUTBOX", "30m"},
		{"RETAIN_OUTBOX", "-1h"},
		{"RETAIN_CONSUMED_EVENTS", "59m"},
		{"RETAIN_CONSUMED_EVENTS", "a week"},
		{"RETAIN_PAYMENT_EVENTS", "1s"},
		{"RETAIN_AUDIT_LOG", "10m"},
		{"RETAIN_DEAD_LETTERS", "5m"},
		{"RETAIN_GATE_KEYS", "30s"},
		{"RETAIN_GATE_KEYS", "0"},
		{"RETAIN_GATE_KEYS", "48h"},
		{"PRUNE_INTERVAL", "500ms"},
		{"PRUNE_INTERVAL", "48h"},
		{"PRUNE_BATCH", "10"},
		{"PRUNE_BATCH", "1000000"},
		{"PRUNE_BATCH", "some"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			_, err := Parse(with(dev(), tc.name, tc.value))
			if err == nil {
				t.Fatalf("%s=%q accepted", tc.name, tc.value)
			}
			if !strings.Contains(err.Error(), tc.name) {
				t.Fatalf("error does not name %s: %v", tc.name, err)
			}
		})
	}
}

// Without APP_ENV the server is dev only where nobody else can reach it.
func TestAppEnvUnsetFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"", false}, // HTTP_ADDR's default, :8080: every interface
		{":8080", false},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{"10.0.0.5:8080", false},
		{"example.com:8080", false},
		{"localhost:8080", true},
		{"127.0.0.1:8080", true},
		{"127.0.0.1:0", true},
		{"[::1]:8080", true},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			env := map[string]string{}
			if tc.addr != "" {
				env["HTTP_ADDR"] = tc.addr
			}
			c, err := Parse(env)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.ok && (c.AppEnv != "dev" || c.Prod()):
				t.Fatalf("AppEnv = %q, want dev", c.AppEnv)
			case !tc.ok && err == nil:
				t.Fatal("accepted: the dev secrets would be served to other machines")
			case !tc.ok && !strings.Contains(err.Error(), "APP_ENV"):
				t.Fatalf("error does not name APP_ENV: %v", err)
			}
			// Said out loud, dev may listen anywhere.
			if _, err := Parse(with(env, "APP_ENV", "dev")); err != nil {
				t.Fatalf("APP_ENV=dev: %v", err)
			}
		})
	}
}

// Production refuses the embedded stand-ins and the dev secrets, naming each.
func TestProdRefusesDevDefaults(t *testing.T) {
	_, err := Parse(map[string]string{"APP_ENV": "prod"})
	if err == nil {
		t.Fatal("prod with nothing set was accepted")
	}
	for _, name := range []string{"DATABASE_URL", "REDIS_URL", "KAFKA_BROKERS", "S3_ENDPOINT", "MEDIA_BASE_URL",
		"JWT_SECRET", "INTERNAL_TOKEN", "PAYMENT_WEBHOOK_SECRET", "S3_ACCESS_KEY", "S3_SECRET_KEY"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("prod error does not name %s: %v", name, err)
		}
	}
	prod := with(dev(), "APP_ENV", "prod", "MEDIA_BASE_URL", "https://cdn.example.com/media",
		"JWT_SECRET", "a-real-secret-of-some-length", "INTERNAL_TOKEN", "a-real-internal-token-of-32-chars",
		"PAYMENT_WEBHOOK_SECRET", "a-real-webhook-secret", "S3_ACCESS_KEY", "AKIAREALKEY", "S3_SECRET_KEY", "a-real-s3-secret")
	c, err := Parse(prod)
	if err != nil {
		t.Fatalf("a complete prod environment: %v", err)
	}
	if !c.Prod() || c.SeedEnabled() {
		t.Fatalf("prod: %+v", c)
	}
	// The internal API's token guards payments and stock: no short one in prod.
	if _, err := Parse(with(prod, "INTERNAL_TOKEN", strings.Repeat("x", 31))); err == nil || !strings.Contains(err.Error(), "INTERNAL_TOKEN") {
		t.Errorf("prod with a 31-character INTERNAL_TOKEN: %v", err)
	}
	if _, err := Parse(with(dev(), "INTERNAL_TOKEN", strings.Repeat("x", 8))); err != nil {
		t.Errorf("dev with an 8-character INTERNAL_TOKEN: %v", err)
	}
	for _, name := range []string{"JWT_SECRET", "INTERNAL_TOKEN", "PAYMENT_WEBHOOK_SECRET", "S3_ACCESS_KEY", "S3_SECRET_KEY"} {
		_, err := Parse(with(prod, name, map[string]string{
			"JWT_SECRET": DevJWTSecret, "INTERNAL_TOKEN": DevInternalToken, "PAYMENT_WEBHOOK_SECRET": DevWebhookSecret,
			"S3_ACCESS_KEY": DevS3AccessKey, "S3_SECRET_KEY": DevS3SecretKey,
		}[name]))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("prod with the dev %s: %v", name, err)
		}
	}
}

// The operators' listener: any host:port apart from HTTP_ADDR; PPROF_ADDR
// is refused, pointing at it.
func TestInternalAddr(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string // "" when refused
		name string // the variable the refusal names
	}{
		{nil, "127.0.0.1:9091", ""},
		{[]string{"INTERNAL_ADDR", "10.0.0.5:9091"}, "10.0.0.5:9091", ""},
		{[]string{"INTERNAL_ADDR", "[::1]:9091"}, "[::1]:9091", ""},
		{[]string{"INTERNAL_ADDR", "127.0.0.1:0", "HTTP_ADDR", "127.0.0.1:0"}, "127.0.0.1:0", ""},
		{[]string{"INTERNAL_ADDR", "9091"}, "", "INTERNAL_ADDR"},
		{[]string{"INTERNAL_ADDR", "127.0.0.1:port"}, "", "INTERNAL_ADDR"},
		{[]string{"INTERNAL_ADDR", "127.0.0.1:70000"}, "", "INTERNAL_ADDR"},
		{[]string{"INTERNAL_ADDR", ":8080", "HTTP_ADDR", ":8080"}, "", "INTERNAL_ADDR"},
		{[]string{"PPROF_ADDR", "127.0.0.1:6060"}, "", "PPROF_ADDR"},
	} {
		t.Run(strings.Join(tc.env, "="), func(t *testing.T) {
			c, err := Parse(with(dev(), tc.env...))
			switch {
			case tc.want != "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && c.InternalAddr != tc.want:
				t.Fatalf("InternalAddr = %q, want %q", c.InternalAddr, tc.want)
			case tc.want == "" && err == nil:
				t.Fatal("accepted")
			case tc.want == "" && !strings.Contains(err.Error(), tc.name):
				t.Fatalf("error does not name %s: %v", tc.name, err)
			}
		})
	}
}
