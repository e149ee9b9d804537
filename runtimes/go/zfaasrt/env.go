// A load's and a call's variables set and put back, and the processes a call left running.
package zfaasrt

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// Sets the variables; what they were before, for restoreEnv.
func applyEnv(env map[string]string) map[string]*string {
	before := map[string]*string{}
	for k, v := range env {
		if old, ok := os.LookupEnv(k); ok {
			before[k] = &old
		} else {
			before[k] = nil
		}
		os.Setenv(k, v)
	}
	return before
}

func restoreEnv(before map[string]*string) {
	for k, v := range before {
		if v == nil {
			os.Unsetenv(k)
			blanks++
		} else {
			os.Setenv(k, *v)
		}
	}
	if blanks >= compactAfter {
		compactEnv()
	}
}

// Go keeps the environment in a slice where an unset leaves a blank entry and a new variable is appended:
// a call's variables, set and unset at every call, would grow it by one entry each. Rebuilt now and then
// from what is set, it stays the size of the environment.
const compactAfter = 1024

var blanks int

func compactEnv() {
	all := os.Environ()
	os.Clearenv()
	for _, kv := range all {
		if i := strings.IndexByte(kv, '='); i > 0 {
			os.Setenv(kv[:i], kv[i+1:])
		}
	}
	blanks = 0
}

// Processes a call left running: in a container every process but init and this one; elsewhere (the
// conformance suite) this one's children. In a container the readdir of /proc is skipped while the
// container's task count (its pids cgroup, one pread of a file kept open) is what it was after the last look
// that found none, and that look is less than rescanAfter old: a call that starts a process changes the
// count, unless it also ends a thread that ran before it; the next look within rescanAfter finds that one.
const rescanAfter = 250 * time.Millisecond

var tasks struct {
	file    *os.File
	tried   bool
	clean   int // the task count when the last look found no stray
	cleanAt time.Time
	buf     [32]byte
}

func taskCount() int {
	if !tasks.tried {
		tasks.tried = true
		for _, f := range []string{"/sys/fs/cgroup/pids.current", "/sys/fs/cgroup/pids/pids.current"} {
			if file, err := os.Open(f); err == nil {
				tasks.file = file
				break
			}
		}
	}
	if tasks.file == nil {
		return -1
	}
	n, err := tasks.file.ReadAt(tasks.buf[:], 0)
	if n == 0 && err != nil {
		return -1
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(tasks.buf[:n])))
	if err != nil || v <= 0 {
		return -1
	}
	return v
}

func strayProcesses() int {
	inContainer := os.Getenv(LineEnv) != "" || os.Getpid() < 100
	if !inContainer {
		return scanProcesses(false)
	}
	count := taskCount()
	now := time.Now()
	if count > 0 && count == tasks.clean && now.Sub(tasks.cleanAt) < rescanAfter {
		return 0
	}
	n := scanProcesses(true)
	if n == 0 {
		tasks.clean, tasks.cleanAt = count, now
	}
	return n
}

func scanProcesses(inContainer bool) int {
	names, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := strconv.Itoa(os.Getpid())
	n := 0
	for _, e := range names {
		name := e.Name()
		if name == "" || name[0] < '0' || name[0] > '9' || name == "1" || name == self {
			continue
		}
		if inContainer {
			n++
			continue
		}
		stat, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue
		}
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 1 && f[1] == self {
				n++
			}
		}
	}
	return n
}
