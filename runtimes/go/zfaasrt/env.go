// A load's and a call's variables set and put back, and the processes a call left running.
package zfaasrt

import (
	"os"
	"strconv"
	"strings"
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
		} else {
			os.Setenv(k, *v)
		}
	}
}

// Processes a call left running: in a container every process but init and this one; elsewhere (the
// conformance suite) this one's children.
func strayProcesses() int {
	names, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := strconv.Itoa(os.Getpid())
	inContainer := os.Getenv(LineEnv) != "" || os.Getpid() < 100
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
