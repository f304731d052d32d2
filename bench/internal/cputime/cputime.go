// Package cputime reads how much CPU time a process, this process and the
// whole machine have used, from Linux's /proc and getrusage, so a benchmark
// can say who kept the cores busy.
package cputime

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

// Process is the user and system time of the process pid, from
// /proc/<pid>/stat.
func Process(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("cputime: read process %d: %w", pid, err)
	}
	return parseStat(pid, string(b))
}

// parseStat reads utime and stime from the text of /proc/<pid>/stat.
func parseStat(pid int, stat string) (time.Duration, error) {
	// The command name may hold spaces and parentheses; the fields after
	// its last ")" are fixed, utime and stime the 12th and 13th.
	rest := stat
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("cputime: short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cputime: unreadable /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// Self is this process's user and system time.
func Self() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("cputime: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// Machine is the time all cores spent on anything but idling, waiting for
// I/O or being stolen by the hypervisor, from the first line of /proc/stat.
func Machine() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("cputime: read /proc/stat: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseMachine(line)
}

// parseMachine sums the busy fields of /proc/stat's "cpu" line.
func parseMachine(line string) (time.Duration, error) {
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("cputime: unexpected /proc/stat line %q", line)
	}
	// cpu user nice system idle iowait irq softirq steal guest ...: guest
	// time is already in user.
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cputime: unreadable /proc/stat: %w", err)
		}
		busy += n
	}
	return time.Duration(busy) * clockTick, nil
}
