package cputime

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with ") " in it, as a process may choose.
	const stat = "4242 (we) ird) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 40 0 0 20 0 8 0 1000 0 0"
	got, err := parseStat(4242, stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 290 * clockTick; got != want {
		t.Fatalf("parseStat = %v, want %v", got, want)
	}
	if _, err := parseStat(1, "1 (init) S 1 1"); err == nil {
		t.Fatal("a short stat line parsed")
	}
}

func TestParseMachine(t *testing.T) {
	got, err := parseMachine("cpu  100 5 30 9000 70 2 3 11 0 0")
	if err != nil {
		t.Fatal(err)
	}
	// user + nice + system + irq + softirq; not idle, iowait nor steal.
	if want := 140 * clockTick; got != want {
		t.Fatalf("parseMachine = %v, want %v", got, want)
	}
	for _, bad := range []string{"intr 1 2 3 4 5 6 7 8", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if _, err := parseMachine(bad); err == nil {
			t.Errorf("parseMachine(%q) did not fail", bad)
		}
	}
}

// Spinning for a while shows up in this process's time, read both ways, and
// in the machine's.
func TestReadersSeeWork(t *testing.T) {
	self0, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	proc0, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	mach0, err := Machine()
	if err != nil {
		t.Fatal(err)
	}
	// Spin until this process has had 300ms of CPU: on a loaded machine that
	// takes longer than 300ms of wall time.
	var self1 time.Duration
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
		if self1, _ = Self(); self1-self0 >= 300*time.Millisecond {
			break
		}
	}
	proc1, _ := Process(os.Getpid())
	mach1, _ := Machine()
	if d := self1 - self0; d < 300*time.Millisecond {
		t.Errorf("Self grew %v over 20s of spinning", d)
	}
	if d := proc1 - proc0; d < 250*time.Millisecond {
		t.Errorf("Process grew %v while Self grew %v", d, self1-self0)
	}
	if d := mach1 - mach0; d < 250*time.Millisecond {
		t.Errorf("Machine grew %v while Self grew %v", d, self1-self0)
	}
	if mach1 < proc1 {
		t.Errorf("Machine = %v, less than this process's %v", mach1, proc1)
	}
	if _, err := Process(1 << 30); err == nil {
		t.Error("Process of a pid that does not exist did not fail")
	}
}
