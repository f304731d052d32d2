package main

import (
	"cmp"
	"fmt"
	"time"

	"livedrops/bench/internal/cputime"
)

// cpuClock is the CPU time the server, this process and the whole machine
// had used at one moment.
type cpuClock struct {
	at                    time.Time
	server, self, machine time.Duration
	err                   error
}

func readCPU(serverPID int) cpuClock {
	c := cpuClock{at: time.Now()}
	var errs [3]error
	c.server, errs[0] = cputime.Process(serverPID)
	c.self, errs[1] = cputime.Self()
	c.machine, errs[2] = cputime.Machine()
	for _, err := range errs {
		if err != nil && c.err == nil {
			c.err = fmt.Errorf("read CPU times: %w", err)
		}
	}
	return c
}

// cores is how many CPU cores each party kept busy between two readings.
type cores struct {
	Server, Self, Machine float64
	// ServerTime is the server's CPU time in the interval.
	ServerTime time.Duration
}

func (c cpuClock) since(before cpuClock) (cores, error) {
	if err := cmp.Or(c.err, before.err); err != nil {
		return cores{}, err
	}
	wall := c.at.Sub(before.at).Seconds()
	return cores{
		Server:     (c.server - before.server).Seconds() / wall,
		Self:       (c.self - before.self).Seconds() / wall,
		Machine:    (c.machine - before.machine).Seconds() / wall,
		ServerTime: c.server - before.server,
	}, nil
}
