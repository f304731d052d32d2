package config

import (
	"strings"
	"testing"
	"time"
)

// dev is a valid dev environment with every service set.
func dev() map[string]string {
	return map[string]string{
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
	c, err := Parse(map[string]string{})
	if err != nil {
		t.Fatalf("empty environment: %v", err)
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
	if c, err := Parse(map[string]string{"RETAIN_AUDIT_LOG": "0", "RETAIN_OUTBOX": "1h", "PRUNE_INTERVAL": "1s", "PRUNE_BATCH": "100"}); err != nil ||
		c.RetainAuditLog != 0 || c.RetainOutbox != time.Hour || c.PruneInterval != time.Second || c.PruneBatch != 100 {
		t.Fatalf("shortest retention settings: %v %+v", err, c)
	}
	if c, err := Parse(map[string]string{"READ_CACHE": "off"}); err != nil || c.ReadCacheOn() {
		t.Fatalf("READ_CACHE=off: %v %+v", err, c)
	}
	off, err := Parse(map[string]string{"SEED": "false"})
	if err != nil || off.SeedEnabled() {
		t.Fatalf("SEED=false: %v %+v", err, off)
	}
	cold, err := Parse(map[string]string{"READ_CACHE": "off"})
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

// Production refuses the embedded stand-ins and the dev secrets, naming each.
func TestProdRefusesDevDefaults(t *testing.T) {
	_, err := Parse(map[string]string{"APP_ENV": "prod"})
	if err == nil {
		t.Fatal("prod with nothing set was accepted")
	}
	for _, name := range []string{"DATABASE_URL", "REDIS_URL", "KAFKA_BROKERS", "S3_ENDPOINT", "MEDIA_BASE_URL",
		"JWT_SECRET", "INTERNAL_TOKEN", "PAYMENT_WEBHOOK_SECRET"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("prod error does not name %s: %v", name, err)
		}
	}
	prod := with(dev(), "APP_ENV", "prod", "MEDIA_BASE_URL", "https://cdn.example.com/media",
		"JWT_SECRET", "a-real-secret-of-some-length", "INTERNAL_TOKEN", "a-real-internal-token",
		"PAYMENT_WEBHOOK_SECRET", "a-real-webhook-secret")
	c, err := Parse(prod)
	if err != nil {
		t.Fatalf("a complete prod environment: %v", err)
	}
	if !c.Prod() || c.SeedEnabled() {
		t.Fatalf("prod: %+v", c)
	}
	for _, name := range []string{"JWT_SECRET", "INTERNAL_TOKEN", "PAYMENT_WEBHOOK_SECRET"} {
		_, err := Parse(with(prod, name, map[string]string{
			"JWT_SECRET": DevJWTSecret, "INTERNAL_TOKEN": DevInternalToken, "PAYMENT_WEBHOOK_SECRET": DevWebhookSecret,
		}[name]))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("prod with the dev %s: %v", name, err)
		}
	}
}

// Profiling listens only where nobody but this machine can reach it.
func TestPprofAddr(t *testing.T) {
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"", true},
		{"127.0.0.1:6060", true},
		{"localhost:6060", true},
		{"[::1]:6060", true},
		{"127.0.0.2:0", true},
		{":6060", false},
		{"0.0.0.0:6060", false},
		{"10.0.0.5:6060", false},
		{"[::]:6060", false},
		{"example.com:6060", false},
		{"localhost", false},
		{"127.0.0.1:port", false},
		{"127.0.0.1:70000", false},
	} {
		t.Run(tc.value, func(t *testing.T) {
			c, err := Parse(with(dev(), "PPROF_ADDR", tc.value))
			switch {
			case tc.ok && err != nil:
				t.Fatalf("PPROF_ADDR=%q refused: %v", tc.value, err)
			case tc.ok && c.PprofAddr != tc.value:
				t.Fatalf("PprofAddr = %q, want %q", c.PprofAddr, tc.value)
			case !tc.ok && err == nil:
				t.Fatalf("PPROF_ADDR=%q accepted", tc.value)
			case !tc.ok && !strings.Contains(err.Error(), "PPROF_ADDR"):
				t.Fatalf("error does not name PPROF_ADDR: %v", err)
			}
		})
	}
}
