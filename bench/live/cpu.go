package main

import (
	"cmp"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of the CPU times in /proc (USER_HZ).
const userHZ = time.Second / 100

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
	c.server, errs[0] = procCPU(serverPID)
	var ru syscall.Rusage
	errs[1] = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	c.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	c.machine, errs[2] = busyCPU()
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

// procCPU is a process's user and system time, from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields are counted after the command name, which may hold spaces:
	// utime and stime are the 12th and 13th after its ")".
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unexpected /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * userHZ, nil
}

// busyCPU is the time all cores spent on anything but idling and waiting
// for I/O or stolen by the hypervisor, from the first line of /proc/stat
// (guest time is already in user).
func busyCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat")
	}
	// cpu user nice system idle iowait irq softirq steal ...
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unexpected /proc/stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * userHZ, nil
}
