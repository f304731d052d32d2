package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is Linux's USER_HZ, the unit of /proc CPU times.
const clockTick = time.Second / 100

// cpuSample is where the CPU time had got to at one moment: the server's,
// this process's and the whole machine's busy time.
type cpuSample struct {
	at                   time.Time
	server, self, system time.Duration
	ok                   bool
}

func sampleCPU(serverPID int) cpuSample {
	s := cpuSample{at: time.Now(), ok: true}
	var err error
	if s.server, err = processCPU(serverPID); err != nil {
		s.ok = false
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	} else {
		s.ok = false
	}
	if s.system, err = machineBusy(); err != nil {
		s.ok = false
	}
	return s
}

// cpuUse is cores used between two samples.
type cpuUse struct{ server, self, machine float64 }

func (s cpuSample) since(before cpuSample) (cpuUse, bool) {
	wall := s.at.Sub(before.at).Seconds()
	if !s.ok || !before.ok || wall <= 0 {
		return cpuUse{}, false
	}
	return cpuUse{
		server:  (s.server - before.server).Seconds() / wall,
		self:    (s.self - before.self).Seconds() / wall,
		machine: (s.system - before.system).Seconds() / wall,
	}, true
}

func (u cpuUse) String() string {
	return fmt.Sprintf("server %.2f, load generator %.2f, whole machine %.2f cores", u.server, u.self, u.machine)
}

// processCPU reads a process's user+system time from /proc/<pid>/stat.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after its ")" are fixed.
	rest := string(b)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unreadable /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// machineBusy reads the time every CPU spent not idle from /proc/stat.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat")
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unreadable /proc/stat")
		}
		// user, nice, system, irq, softirq; not idle, iowait, steal, nor guest (already in user).
		if i == 3 || i == 4 || i >= 7 {
			continue
		}
		busy += n
	}
	return time.Duration(busy) * clockTick, nil
}
