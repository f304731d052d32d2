package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"livedrops/bench/internal/cputime"
)

// cpuSample is where CPU time had got to at one moment, for each party of
// a round. Zero where a party is absent or could not be read.
type cpuSample struct {
	at     time.Time
	server time.Duration
	// postgres holds each backend of the sandbox database by pid.
	postgres     map[int]time.Duration
	redis        time.Duration
	self         time.Duration
	machine      time.Duration
	serverOK, ok bool
}

// sampleCPU reads the CPU time of the server (serverPID 0: none), the
// PostgreSQL backends serving the sandbox database, Redis, this process and
// the whole machine.
func (b *bench) sampleCPU(ctx context.Context, serverPID int) cpuSample {
	s := cpuSample{at: time.Now(), ok: true, postgres: map[int]time.Duration{}}
	if serverPID != 0 {
		var err error
		s.server, err = cputime.Process(serverPID)
		s.serverOK = err == nil
	}
	rows, err := b.db.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1`, b.box.Name)
	if err == nil {
		for rows.Next() {
			var pid int
			if rows.Scan(&pid) == nil {
				if t, err := cputime.Process(pid); err == nil {
					s.postgres[pid] = t
				}
			}
		}
		rows.Close()
	}
	if info, err := b.redis.Info(ctx, "cpu").Result(); err == nil {
		s.redis = redisCPU(info)
	}
	if s.self, err = cputime.Self(); err != nil {
		s.ok = false
	}
	if s.machine, err = cputime.Machine(); err != nil {
		s.ok = false
	}
	return s
}

// cpuUse is the cores each party used between two samples.
type cpuUse struct {
	server, postgres, redis, self, machine float64
	hasServer                              bool
}

func (s cpuSample) since(before cpuSample) (cpuUse, bool) {
	wall := s.at.Sub(before.at).Seconds()
	if !s.ok || !before.ok || wall <= 0 {
		return cpuUse{}, false
	}
	var pg time.Duration
	for pid, t := range s.postgres {
		if t0, ok := before.postgres[pid]; ok {
			pg += t - t0
		}
	}
	return cpuUse{
		server:    (s.server - before.server).Seconds() / wall,
		hasServer: s.serverOK && before.serverOK,
		postgres:  pg.Seconds() / wall,
		redis:     (s.redis - before.redis).Seconds() / wall,
		self:      (s.self - before.self).Seconds() / wall,
		machine:   (s.machine - before.machine).Seconds() / wall,
	}, true
}

func (u cpuUse) String() string {
	parts := []string{}
	named := u.postgres + u.redis + u.self
	if u.hasServer {
		parts = append(parts, fmt.Sprintf("server %.2f", u.server))
		named += u.server
	}
	parts = append(parts, fmt.Sprintf("PostgreSQL backends %.2f", u.postgres), fmt.Sprintf("Redis %.2f", u.redis),
		fmt.Sprintf("load generator %.2f", u.self))
	return fmt.Sprintf("CPU cores: %s; whole machine %.2f (other processes %.2f)",
		strings.Join(parts, ", "), u.machine, max(0, u.machine-named))
}

// redisCPU sums used_cpu_user and used_cpu_sys from INFO cpu.
func redisCPU(info string) time.Duration {
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				total += f
			}
		}
	}
	return time.Duration(total * float64(time.Second))
}
