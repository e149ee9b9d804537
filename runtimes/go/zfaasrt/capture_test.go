// The output capture against a real pipe: what a call prints (the function, a process it starts, either
// descriptor) is its logs, all of it by the time the call ends; what is printed between calls is not.
package zfaasrt

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestCaptureKeepsWhatACallPrints(t *testing.T) {
	c, err := startCapture()
	if err != nil {
		t.Fatal(err)
	}
	defer c.restore()
	for i := 0; i < 200; i++ {
		c.begin()
		fmt.Printf("call %d\n", i)
		fmt.Fprintf(os.Stderr, "err %d\n", i)
		if i%50 == 0 {
			cmd := exec.Command("sh", "-c", "echo child out; echo child err >&2")
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			if err := cmd.Run(); err != nil {
				t.Fatal(err)
			}
		}
		logs := c.end()
		want := fmt.Sprintf("call %d\nerr %d\n", i, i)
		if i%50 == 0 {
			want += "child out\nchild err\n"
		}
		if logs != want {
			t.Fatalf("call %d: logs %q, want %q", i, logs, want)
		}
		fmt.Printf("between calls %d\n", i) // to the real stderr, never the next call's logs
	}
	c.begin()
	if logs := c.end(); strings.Contains(logs, "between") {
		t.Fatalf("a call's logs hold what was printed before it: %q", logs)
	}
}

func TestCaptureKeepsTheEndOfALongOutput(t *testing.T) {
	c, err := startCapture()
	if err != nil {
		t.Fatal(err)
	}
	defer c.restore()
	c.begin()
	line := strings.Repeat("x", 99) + "\n"
	for i := 0; i < 3*LogLimit/len(line); i++ {
		os.Stdout.WriteString(line)
	}
	os.Stdout.WriteString("last\n")
	logs := c.end()
	if len(logs) > LogLimit || !strings.HasSuffix(logs, "x\nlast\n") {
		t.Fatalf("logs of %d bytes ending %q", len(logs), logs[len(logs)-20:])
	}
}
